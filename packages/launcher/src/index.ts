export * from './unpacked-image.ts';
export * from './entrypoint-command.ts';
export * from './processes-using.ts';
export * from './hold-open.ts';
