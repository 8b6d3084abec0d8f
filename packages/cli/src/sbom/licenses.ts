import { SPDX_IDS } from './spdx-ids.ts';

/** A declared licence as SBOMs carry it: an SPDX id, an SPDX expression, or (anything else) its text as a name. */
export type SbomLicense = { id: string } | { expression: string } | { name: string };

/** Debian's copyright-format short names that differ from SPDX's (DEP-5 §License short name). */
const DEBIAN_NAMES: Record<string, string> = {
  'GPL-1+': 'GPL-1.0-or-later', 'GPL-2': 'GPL-2.0-only', 'GPL-2+': 'GPL-2.0-or-later', 'GPL-3': 'GPL-3.0-only', 'GPL-3+': 'GPL-3.0-or-later',
  'LGPL-2': 'LGPL-2.0-only', 'LGPL-2+': 'LGPL-2.0-or-later', 'LGPL-2.1': 'LGPL-2.1-only', 'LGPL-2.1+': 'LGPL-2.1-or-later',
  'LGPL-3': 'LGPL-3.0-only', 'LGPL-3+': 'LGPL-3.0-or-later', 'AGPL-3': 'AGPL-3.0-only', 'AGPL-3+': 'AGPL-3.0-or-later',
  'BSD-2-clause': 'BSD-2-Clause', 'BSD-3-clause': 'BSD-3-Clause', 'BSD-4-clause': 'BSD-4-Clause', Expat: 'MIT',
  'PSF-2': 'PSF-2.0', 'Apache-2': 'Apache-2.0', 'MPL-2': 'MPL-2.0', 'Artistic-2': 'Artistic-2.0', zlib: 'Zlib',
};

const OPERATORS = new Set(['AND', 'OR', 'WITH']);

/**
 * The SPDX form of a licence string as a package declared it: an id from the SPDX list (Debian's short names
 * mapped), an expression whose every term is one, or else the text itself as a name (never guessed into an id).
 */
export function sbomLicense(declared: string | undefined): SbomLicense | undefined {
  const original = declared?.trim();
  if (!original) return undefined;
  // DEP-5 writes its operators in lower case ("GPL-2+ or Artistic"); SPDX in upper.
  const text = original.replace(/\s+(and|or|with)\s+/g, (_, op: string) => ` ${op.toUpperCase()} `);
  const single = text.replace(/^\((.*)\)$/, '$1').trim();
  const mapped = DEBIAN_NAMES[single] ?? single;
  if (SPDX_IDS.has(mapped)) return { id: mapped };
  const terms = text.split(/[\s()]+/).filter(Boolean);
  if (terms.length > 1 && terms.some((t) => OPERATORS.has(t))) {
    const expression = text.replace(/[^\s()]+/g, (t) => (OPERATORS.has(t) ? t : DEBIAN_NAMES[t] ?? t));
    if (expression.split(/[\s()]+/).filter(Boolean).every((t) => OPERATORS.has(t) || SPDX_IDS.has(t))) return { expression };
  }
  return { name: original };
}
