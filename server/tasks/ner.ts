// Named-entity tags: any of IOB1, IOB2 (BIO) and BIOES normalised to BIO, and entity spans read from
// BIO tags by seqeval's strict rules (an entity starts at B-X and continues over I-X of the same type).

export interface Entity {
  type: string;
  /** Token indices [start, end). */
  start: number;
  end: number;
}

/**
 * BIO tags from IOB1, BIO or BIOES: S-X → B-X, E-X → I-X, and an I-X that does not continue an X
 * entity (IOB1's way of starting one, or a mismatched tag) → B-X. `repaired` counts the I-X → B-X changes.
 */
export function normalizeTags(tags: string[]): { tags: string[]; repaired: number } {
  let repaired = 0;
  const out: string[] = [];
  for (let i = 0; i < tags.length; i++) {
    const t = tags[i];
    if (t === "O") {
      out.push(t);
      continue;
    }
    const prefix = t[0];
    const type = t.slice(2);
    if (prefix === "B" || prefix === "S") out.push(`B-${type}`);
    else {
      const prev = out[i - 1];
      const continues = prev !== undefined && prev !== "O" && prev.slice(2) === type;
      if (!continues) repaired++;
      out.push(continues ? `I-${type}` : `B-${type}`);
    }
  }
  return { tags: out, repaired };
}

/** Entities of a BIO sequence, seqeval strict mode (IOB2): an I-X not continuing an X entity is no entity. */
export function entities(tags: string[]): Entity[] {
  const out: Entity[] = [];
  let cur: Entity | undefined;
  const close = (end: number) => {
    if (cur) out.push({ ...cur, end });
    cur = undefined;
  };
  tags.forEach((t, i) => {
    const prefix = t[0];
    const type = t.slice(2);
    if (prefix === "B") {
      close(i);
      cur = { type, start: i, end: i + 1 };
    } else if (prefix === "I" && cur && cur.type === type) {
      // continues
    } else {
      close(i);
    }
  });
  close(tags.length);
  return out;
}

/** The label list of a tag set: O first, then B-/I- of each type in sorted order. */
export function tagLabels(seen: Iterable<string>): string[] {
  const types = new Set<string>();
  for (const t of seen) if (t !== "O") types.add(t.slice(2));
  return ["O", ...[...types].sort().flatMap((t) => [`B-${t}`, `I-${t}`])];
}
