export * from './unpacked-image.ts';
export * from './entrypoint-command.ts';
export * from './process-alive.ts';
