// A module-resolution hook for running pyml from its checkout: every import resolves with the `source` export
// condition, so @pyml/* packages load from src/*.ts (through tsx) instead of a dist/ that may be stale or absent.
export async function resolve(specifier, context, nextResolve) {
  if (context.conditions.includes('source')) return nextResolve(specifier, context);
  return nextResolve(specifier, { ...context, conditions: [...context.conditions, 'source'] });
}
