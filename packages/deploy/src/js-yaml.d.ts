// js-yaml ships no types and @types/js-yaml is not installed: the two functions used here.
declare module 'js-yaml' {
  export interface DumpOptions { indent?: number; lineWidth?: number; noRefs?: boolean; sortKeys?: boolean; quotingType?: "'" | '"' }
  export function dump(value: unknown, options?: DumpOptions): string;
  export function load(text: string, options?: { filename?: string }): unknown;
  export function loadAll(text: string, iterator?: undefined, options?: { filename?: string }): unknown[];
  const yaml: { dump: typeof dump; load: typeof load; loadAll: typeof loadAll };
  export default yaml;
}
