import type { Signature } from '@pyml/contract';

/** Splits CSV text into records (RFC 4180: quoted fields, doubled quotes, CRLF or LF). */
export function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  let i = 0;
  const endField = () => { row.push(field); field = ''; };
  const endRow = () => { endField(); if (row.length > 1 || row[0] !== '') rows.push(row); row = []; };
  while (i < text.length) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { field += '"'; i += 2; continue; }
      if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"' && field === '') quoted = true;
    else if (c === ',') endField();
    else if (c === '\n' || c === '\r') {
      endRow();
      if (c === '\r' && text[i + 1] === '\n') i++;
    } else field += c;
    i++;
  }
  if (quoted) throw new Error('unterminated quoted field at the end of the file');
  if (field !== '' || row.length) endRow();
  return rows;
}

/**
 * A V2 JSON request from CSV: one column per model input (by header name), each a 1-D tensor of the input's dtype,
 * which is how dataframe models take their columns. Errors name the file, row and column.
 */
export function csvToV2Request(text: string, signature: Signature, file: string): { inputs: { name: string; datatype: string; shape: number[]; data: unknown[] }[] } {
  const [header, ...rows] = parseCsv(text.replace(/^\uFEFF/, ''));
  if (!header) throw new Error(`${file}: empty CSV; expected a header row naming the columns ${signature.inputs.map((s) => s.name).join(', ')}`);
  const wanted = new Map(signature.inputs.map((s) => [s.name, s]));
  for (const name of header) {
    if (!wanted.has(name)) throw new Error(`${file}: column '${name}' is not an input of the model (inputs: ${[...wanted.keys()].join(', ')})`);
  }
  for (const s of signature.inputs) {
    if (!header.includes(s.name)) throw new Error(`${file}: missing column '${s.name}' (${s.dtype})`);
    if (s.shape.length !== 1) throw new Error(`${file}: input '${s.name}' has shape [${s.shape.join(', ')}]; CSV gives 1-D columns only, so use a V2 JSON request for this model`);
  }
  rows.forEach((r, i) => {
    if (r.length !== header.length) throw new Error(`${file}: row ${i + 2} has ${r.length} fields, the header has ${header.length}`);
  });
  return {
    inputs: header.map((name, col) => {
      const spec = wanted.get(name)!;
      const data = rows.map((r, i) => cell(r[col], spec.dtype, () => `${file}: row ${i + 2}, column '${name}'`));
      return { name, datatype: spec.dtype, shape: [rows.length], data };
    }),
  };
}

function cell(text: string, dtype: string, where: () => string): unknown {
  if (dtype === 'BYTES') return text;
  if (dtype === 'BOOL') {
    const t = text.trim().toLowerCase();
    if (t === 'true' || t === '1') return true;
    if (t === 'false' || t === '0') return false;
    throw new Error(`${where()}: ${JSON.stringify(text)} is not a BOOL (true/false/1/0)`);
  }
  const t = text.trim();
  if (dtype === 'INT64' || dtype === 'UINT64') {
    if (!/^-?\d+$/.test(t)) throw new Error(`${where()}: ${JSON.stringify(text)} is not an integer (${dtype})`);
    return t; // exact: the V2 JSON parser takes 64-bit integers as digit strings
  }
  if (t === '' || Number.isNaN(Number(t)) && t !== 'NaN') throw new Error(`${where()}: ${JSON.stringify(text)} is not a number (${dtype})`);
  if (dtype.startsWith('FP')) return /^[-+]?(Infinity|NaN)$/.test(t) ? t.replace('+', '') : Number(t);
  if (!Number.isInteger(Number(t))) throw new Error(`${where()}: ${JSON.stringify(text)} is not an integer (${dtype})`);
  return Number(t);
}
