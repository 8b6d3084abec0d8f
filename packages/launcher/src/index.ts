export * from './unpacked-image.ts';
export * from './entrypoint-command.ts';
export * from './process-alive.ts';
export * from './processes-using.ts';
export * from './hold-open.ts';
