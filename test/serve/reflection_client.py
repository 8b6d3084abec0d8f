"""A gRPC server-reflection client that does what grpcurl does, on Debian's python3-grpcio and protobuf.

    python3 reflection_client.py HOST:PORT v1|v1alpha STEP...

Each STEP (JSON) runs in order on ONE ServerReflectionInfo stream, as grpcurl does, and prints one JSON line:
  {"list": true}              list_services                       -> {"services": [...]}
  {"describe": "SYMBOL"}      file_containing_symbol, then the     -> {"kind": "service", "methods": [...]} or
                              symbol found in a DescriptorPool        {"kind": "message", "fields": [...]}
                              made of the files received
  {"file": "NAME"}            file_by_filename                     -> {"files": [names]}
  {"call": "pkg.Svc/Method", "request": {...}}  a unary call whose request and response classes are made from
                              the reflected descriptors (json_format both ways), as `grpcurl -d JSON ... Method`
  {"raw": {field: value}}     any request; the answer as JSON      -> {"error": {...}} for an error_response
The reflection messages' own classes are made here from descriptor_pb2, not from anything the server says.
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pb2 as d
from google.protobuf import descriptor_pool, json_format, message_factory

F = d.FieldDescriptorProto


def message_class(pool, name):
    desc = pool.FindMessageTypeByName(name)
    get = getattr(message_factory, "GetMessageClass", None)
    return get(desc) if get else message_factory.MessageFactory(pool).GetPrototype(desc)


def reflection_pool(package):
    """grpc/reflection/{v1,v1alpha}/reflection.proto, written out field by field."""
    f = d.FileDescriptorProto(name="reflection.proto", package=package, syntax="proto3")

    def message(name, fields, oneofs=()):
        m = f.message_type.add(name=name)
        for o in oneofs:
            m.oneof_decl.add(name=o)
        for fname, number, ftype, type_name, label, oneof in fields:
            fd = m.field.add(name=fname, number=number, type=ftype, label=label or F.LABEL_OPTIONAL)
            if type_name:
                fd.type_name = f".{package}.{type_name}"
            if oneof is not None:
                fd.oneof_index = oneof

    S, I, B, M, R = F.TYPE_STRING, F.TYPE_INT32, F.TYPE_BYTES, F.TYPE_MESSAGE, F.LABEL_REPEATED
    message("ServerReflectionRequest", [
        ("host", 1, S, None, None, None), ("file_by_filename", 3, S, None, None, 0), ("file_containing_symbol", 4, S, None, None, 0),
        ("file_containing_extension", 5, M, "ExtensionRequest", None, 0), ("all_extension_numbers_of_type", 6, S, None, None, 0),
        ("list_services", 7, S, None, None, 0)], ["message_request"])
    message("ExtensionRequest", [("containing_type", 1, S, None, None, None), ("extension_number", 2, I, None, None, None)])
    message("ServerReflectionResponse", [
        ("valid_host", 1, S, None, None, None), ("original_request", 2, M, "ServerReflectionRequest", None, None),
        ("file_descriptor_response", 4, M, "FileDescriptorResponse", None, 0), ("all_extension_numbers_response", 5, M, "ExtensionNumberResponse", None, 0),
        ("list_services_response", 6, M, "ListServiceResponse", None, 0), ("error_response", 7, M, "ErrorResponse", None, 0)], ["message_response"])
    message("FileDescriptorResponse", [("file_descriptor_proto", 1, B, None, R, None)])
    message("ExtensionNumberResponse", [("base_type_name", 1, S, None, None, None), ("extension_number", 2, I, None, R, None)])
    message("ListServiceResponse", [("service", 1, M, "ServiceResponse", R, None)])
    message("ServiceResponse", [("name", 1, S, None, None, None)])
    message("ErrorResponse", [("error_code", 1, I, None, None, None), ("error_message", 2, S, None, None, None)])
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    return pool


class Reflection:
    """One ServerReflectionInfo stream: a request out, its response back, in turn."""

    def __init__(self, channel, version):
        package = f"grpc.reflection.{version}"
        pool = reflection_pool(package)
        self.Request = message_class(pool, f"{package}.ServerReflectionRequest")
        self.Response = message_class(pool, f"{package}.ServerReflectionResponse")
        self.outbox = []
        self.wake = __import__("threading").Condition()
        self.closed = False
        call = channel.stream_stream(f"/{package}.ServerReflection/ServerReflectionInfo",
                                     request_serializer=lambda m: m.SerializeToString(),
                                     response_deserializer=self.Response.FromString)
        self.responses = call(self._requests(), timeout=30)
        self.pool = descriptor_pool.DescriptorPool()
        self.added = set()

    def _requests(self):
        while True:
            with self.wake:
                while not self.outbox and not self.closed:
                    self.wake.wait()
                if not self.outbox:
                    return
                yield self.outbox.pop(0)

    def ask(self, **fields):
        with self.wake:
            self.outbox.append(self.Request(**fields))
            self.wake.notify()
        response = next(self.responses)
        if response.WhichOneof("message_response") == "error_response":
            return {"error": {"code": response.error_response.error_code, "message": response.error_response.error_message}}, response
        return None, response

    def close(self):
        with self.wake:
            self.closed = True
            self.wake.notify()
        # The server ends its side with OK once ours ended: drain to the status.
        for _ in self.responses:
            pass
        return self.responses.code().name

    def add_files(self, response):
        """Adds the FileDescriptorProtos of an answer to the pool (dependencies first, as they are listed)."""
        names = []
        pending = [d.FileDescriptorProto.FromString(b) for b in response.file_descriptor_response.file_descriptor_proto]
        for fd in pending:
            names.append(fd.name)
            if fd.name not in self.added:
                self.pool.Add(fd)
                self.added.add(fd.name)
        return names

    def find(self, symbol):
        error, response = self.ask(file_containing_symbol=symbol)
        if error:
            return error
        self.add_files(response)
        return None


def describe(reflection, symbol):
    error = reflection.find(symbol)
    if error:
        return error
    pool = reflection.pool
    try:
        service = pool.FindServiceByName(symbol)
        return {"kind": "service", "name": service.full_name, "file": service.file.name, "methods": [
            {"name": m.name, "input": m.input_type.full_name, "output": m.output_type.full_name,
             "client_streaming": bool(getattr(m, "client_streaming", False)), "server_streaming": bool(getattr(m, "server_streaming", False))}
            for m in service.methods]}
    except KeyError:
        pass
    try:
        message = pool.FindMessageTypeByName(symbol)
        return {"kind": "message", "name": message.full_name, "file": message.file.name, "fields": [
            {"name": f.name, "number": f.number, "repeated": f.label == f.LABEL_REPEATED,
             "type": (f.message_type.full_name if f.message_type else f.enum_type.full_name if f.enum_type else f.type),
             "oneof": f.containing_oneof.name if f.containing_oneof else None, "map": bool(f.message_type and f.message_type.GetOptions().map_entry)}
            for f in message.fields]}
    except KeyError:
        pass
    try:
        method = pool.FindMethodByName(symbol)
        return {"kind": "method", "name": method.full_name, "input": method.input_type.full_name, "output": method.output_type.full_name}
    except (KeyError, AttributeError):
        pass
    enum = pool.FindEnumTypeByName(symbol)
    return {"kind": "enum", "name": enum.full_name, "values": [v.name for v in enum.values]}


def call(channel, reflection, method_path, request):
    service_name, method_name = method_path.split("/")
    error = reflection.find(service_name)
    if error:
        return error
    method = reflection.pool.FindServiceByName(service_name).methods_by_name[method_name]
    Request = message_class(reflection.pool, method.input_type.full_name)
    Response = message_class(reflection.pool, method.output_type.full_name)
    unary = channel.unary_unary(f"/{service_name}/{method_name}", request_serializer=lambda m: m.SerializeToString(), response_deserializer=Response.FromString)
    answer = unary(json_format.ParseDict(request, Request()), timeout=30)
    return {"response": json_format.MessageToDict(answer, preserving_proto_field_name=True)}


def main():
    target, version, *steps = sys.argv[1:]
    with grpc.insecure_channel(target) as channel:
        reflection = Reflection(channel, version)
        for raw in steps:
            step = json.loads(raw)
            if "list" in step:
                error, response = reflection.ask(list_services="*")
                out = error or {"services": [s.name for s in response.list_services_response.service]}
            elif "describe" in step:
                out = describe(reflection, step["describe"])
            elif "file" in step:
                error, response = reflection.ask(file_by_filename=step["file"])
                out = error or {"files": reflection.add_files(response)}
            elif "call" in step:
                out = call(channel, reflection, step["call"], step.get("request", {}))
            else:
                error, response = reflection.ask(**step["raw"])
                out = error or {"response": json_format.MessageToDict(response, preserving_proto_field_name=True)}
            print(json.dumps(out), flush=True)
        print(json.dumps({"status": reflection.close()}), flush=True)


main()
