// Makes reflection-descriptors.ts: the FileDescriptorProtos server reflection answers with, from the .proto files
// (the OIP and health protos of the repo's proto/, and reflection.proto here). Run after changing one of them:
//   npx tsx packages/runtime/src/oip/reflection-generate.ts
// test/serve/reflection checks that the committed file is what this makes. Not loaded by any server: it needs
// protobufjs's full build and its descriptor extension, which the servers do without.
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';
import descriptor from 'protobufjs/ext/descriptor/index.js';

const HERE = new URL('.', import.meta.url);
const REPO_PROTO = new URL('../../../../proto/', import.meta.url);
const OUTPUT = fileURLToPath(new URL('reflection-descriptors.ts', HERE));

/** Each file as clients know it (its canonical name) and where its text comes from. */
const SOURCES = [
  { name: 'grpc_predict_v2.proto', text: () => readFileSync(new URL('grpc_predict_v2.proto', REPO_PROTO), 'utf8') },
  { name: 'grpc/health/v1/health.proto', text: () => readFileSync(new URL('health.proto', REPO_PROTO), 'utf8') },
  { name: 'grpc/reflection/v1/reflection.proto', text: () => readFileSync(new URL('reflection.proto', HERE), 'utf8') },
  { name: 'grpc/reflection/v1alpha/reflection.proto', text: () => readFileSync(new URL('reflection.proto', HERE), 'utf8').replace('package grpc.reflection.v1;', 'package grpc.reflection.v1alpha;') },
];

export interface DescribedFile {
  name: string;
  /** Fully-qualified names it declares: messages, enums and their values, fields, services and methods. */
  symbols: string[];
  services: string[];
  /** The serialized FileDescriptorProto. */
  bytes: Uint8Array;
}

const SCALAR_TYPES: Record<string, string> = {
  double: 'TYPE_DOUBLE', float: 'TYPE_FLOAT', int64: 'TYPE_INT64', uint64: 'TYPE_UINT64', int32: 'TYPE_INT32',
  fixed64: 'TYPE_FIXED64', fixed32: 'TYPE_FIXED32', bool: 'TYPE_BOOL', string: 'TYPE_STRING', bytes: 'TYPE_BYTES',
  uint32: 'TYPE_UINT32', sfixed32: 'TYPE_SFIXED32', sfixed64: 'TYPE_SFIXED64', sint32: 'TYPE_SINT32', sint64: 'TYPE_SINT64',
};

/** protoc's json_name: lowerCamelCase of the field name. */
const jsonName = (name: string) => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
/** protoc's map entry name: the field name in CamelCase, then Entry. */
const mapEntryName = (name: string) => `${name.replace(/(^|_)([a-z0-9])/g, (_, _u: string, c: string) => c.toUpperCase())}Entry`;
/** protobufjs's full names start with a dot, as descriptors' type names do; symbols do not. */
const symbol = (fullName: string) => fullName.replace(/^\./, '');

function fieldProto(field: protobuf.Field, oneofIndex: number | undefined) {
  const resolved = field.resolvedType;
  const type = resolved instanceof protobuf.Enum ? 'TYPE_ENUM' : resolved ? 'TYPE_MESSAGE' : SCALAR_TYPES[field.type];
  if (!type) throw new Error(`field ${field.fullName} has type ${field.type}, which this generator does not know`);
  return {
    name: field.name, number: field.id, label: field.repeated ? 'LABEL_REPEATED' : 'LABEL_OPTIONAL', type,
    ...(resolved ? { typeName: resolved.fullName } : {}), jsonName: jsonName(field.name),
    ...(oneofIndex !== undefined ? { oneofIndex } : {}),
  };
}

function enumProto(e: protobuf.Enum, symbols: string[]) {
  symbols.push(symbol(e.fullName));
  // An enum's values are scoped beside the enum, not inside it (protobuf's C++ scoping rules).
  const scope = symbol(e.parent!.fullName);
  for (const value of Object.keys(e.values)) symbols.push(scope ? `${scope}.${value}` : value);
  return { name: e.name, value: Object.entries(e.values).map(([name, number]) => ({ name, number })) };
}

function messageProto(type: protobuf.Type, symbols: string[]): Record<string, unknown> {
  symbols.push(symbol(type.fullName));
  const oneofs = type.oneofsArray;
  const nestedType: Record<string, unknown>[] = [];
  const field = type.fieldsArray.map((f) => {
    symbols.push(symbol(f.fullName));
    if (!(f instanceof protobuf.MapField)) {
      const index = f.partOf ? oneofs.indexOf(f.partOf) : -1;
      return fieldProto(f, index >= 0 ? index : undefined);
    }
    // map<K, V> is a repeated nested XEntry { K key = 1; V value = 2; } marked map_entry, as protoc writes it.
    const entry = mapEntryName(f.name);
    const value = f.resolvedType;
    nestedType.push({
      name: entry, options: { mapEntry: true },
      field: [
        { name: 'key', number: 1, label: 'LABEL_OPTIONAL', type: SCALAR_TYPES[f.keyType], jsonName: 'key' },
        { name: 'value', number: 2, label: 'LABEL_OPTIONAL', type: value instanceof protobuf.Enum ? 'TYPE_ENUM' : value ? 'TYPE_MESSAGE' : SCALAR_TYPES[f.type], ...(value ? { typeName: value.fullName } : {}), jsonName: 'value' },
      ],
    });
    return { name: f.name, number: f.id, label: 'LABEL_REPEATED', type: 'TYPE_MESSAGE', typeName: `${type.fullName}.${entry}`, jsonName: jsonName(f.name) };
  });
  for (const nested of type.nestedArray) if (nested instanceof protobuf.Type) nestedType.push(messageProto(nested, symbols));
  return {
    name: type.name, field, nestedType,
    enumType: type.nestedArray.filter((n): n is protobuf.Enum => n instanceof protobuf.Enum).map((e) => enumProto(e, symbols)),
    oneofDecl: oneofs.map((o) => ({ name: o.name })),
  };
}

/** One .proto file as a FileDescriptorProto, with the symbols it declares. */
export function describeProto(name: string, text: string): DescribedFile {
  const { root, package: pkg, imports } = protobuf.parse(text, new protobuf.Root(), { keepCase: true, alternateCommentMode: true });
  if (imports?.length) throw new Error(`${name} imports ${imports.join(', ')}: dependencies are not described by this generator`);
  root.resolveAll();
  const ns = pkg ? root.lookup(pkg) : root;
  if (!(ns instanceof protobuf.Namespace)) throw new Error(`${name}: package ${pkg} not found`);
  const symbols: string[] = [];
  const services: string[] = [];
  const messageType: Record<string, unknown>[] = [];
  const enumType: Record<string, unknown>[] = [];
  const service: Record<string, unknown>[] = [];
  for (const nested of ns.nestedArray) {
    if (nested instanceof protobuf.Type) messageType.push(messageProto(nested, symbols));
    else if (nested instanceof protobuf.Enum) enumType.push(enumProto(nested, symbols));
    else if (nested instanceof protobuf.Service) {
      symbols.push(symbol(nested.fullName));
      services.push(symbol(nested.fullName));
      service.push({
        name: nested.name,
        method: nested.methodsArray.map((m) => {
          m.resolve();
          symbols.push(symbol(m.fullName));
          return { name: m.name, inputType: m.resolvedRequestType!.fullName, outputType: m.resolvedResponseType!.fullName, ...(m.requestStream ? { clientStreaming: true } : {}), ...(m.responseStream ? { serverStreaming: true } : {}) };
        }),
      });
    }
  }
  const file = descriptor.FileDescriptorProto.fromObject({ name, package: pkg, messageType, enumType, service, syntax: 'proto3' });
  return { name, symbols, services, bytes: descriptor.FileDescriptorProto.encode(file).finish() };
}

export function describeProtoFiles(): DescribedFile[] {
  return SOURCES.map((s) => describeProto(s.name, s.text()));
}

/** The text of reflection-descriptors.ts. */
export function descriptorsModule(files: DescribedFile[]): string {
  const entries = files.map((f) => `  {\n    name: ${JSON.stringify(f.name)},\n    services: ${JSON.stringify(f.services)},\n    symbols: ${JSON.stringify(f.symbols)},\n    descriptor: '${Buffer.from(f.bytes).toString('base64')}',\n  },`);
  return `// Made by reflection-generate.ts from the .proto files; do not edit (test/serve/reflection checks it).
/** The files server reflection describes: each FileDescriptorProto (base64), its services and the symbols it declares. */
export const REFLECTED_FILES: readonly { name: string; services: readonly string[]; symbols: readonly string[]; descriptor: string }[] = [
${entries.join('\n')}
];
`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const tmp = `${OUTPUT}.${process.pid}.tmp`;
  writeFileSync(tmp, descriptorsModule(describeProtoFiles()));
  renameSync(tmp, OUTPUT);
  console.log(`wrote ${OUTPUT}`);
}
