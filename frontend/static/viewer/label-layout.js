// Label placement without overlaps, as plain geometry (no DOM), so it is unit-tested in Node.
//
// placeRowLabels: labels that belong to points on one horizontal line (the output logits) are
// put in up to `maxTiers` stacked rows above it. Each row is packed left to right in the
// points' order, each label as close to its point as the row allows; when a row cannot hold its
// labels at full length they are shortened with an ellipsis (the full text stays available to
// the caller for hover). Boxes within a row never overlap, and rows do not share space.
//
// separateBoxes: pushes overlapping rectangles apart (the subgraph panel's nodes and labels)
// until no two overlap, moving each pair along the axis that needs the smaller shift.

/** True when two boxes {x0, y0, x1, y1} overlap by more than `eps`. */
export function boxesOverlap(a, b, eps = 0.01) {
  return a.x0 < b.x1 - eps && b.x0 < a.x1 - eps && a.y0 < b.y1 - eps && b.y0 < a.y1 - eps;
}

/** Index pairs of overlapping boxes (for tests and assertions). */
export function overlappingPairs(boxes) {
  const pairs = [];
  for (let i = 0; i < boxes.length; i += 1) {
    for (let j = i + 1; j < boxes.length; j += 1) if (boxesOverlap(boxes[i], boxes[j])) pairs.push([i, j]);
  }
  return pairs;
}

/** The longest prefix of `text` plus "…" that `measure` says fits in `width` ("" if none does). */
export function elide(text, width, measure) {
  if (measure(text) <= width) return text;
  let low = 0;
  let high = text.length;
  while (low < high) {
    const mid = Math.ceil((low + high) / 2);
    if (measure(`${text.slice(0, mid)}…`) <= width) low = mid;
    else high = mid - 1;
  }
  return low > 0 ? `${text.slice(0, low)}…` : measure("…") <= width ? "…" : "";
}

/** Pack one row of labels ({x, width}) in order inside [left, right] with `gap` between them. */
function packRow(items, left, right, gap) {
  const starts = items.map((item) => item.x - item.width / 2);
  // Left to right: no overlap with the previous label; then right to left: stay inside `right`.
  for (let i = 0; i < items.length; i += 1) {
    const min = i === 0 ? left : starts[i - 1] + items[i - 1].width + gap;
    starts[i] = Math.max(starts[i], min);
  }
  for (let i = items.length - 1; i >= 0; i -= 1) {
    const max = i === items.length - 1 ? right - items[i].width : starts[i + 1] - gap - items[i].width;
    starts[i] = Math.min(starts[i], max);
  }
  return starts;
}

const rowWidth = (items, gap) => items.reduce((sum, item) => sum + item.width, 0) + gap * Math.max(0, items.length - 1);

/**
 * Place labels for points along a line. items: [{key, x, text}]; returns one entry per item,
 * in the input order: {key, text (maybe elided), full, x0, x1, tier, anchorX}. Tier 0 is the row
 * nearest the points. `measure(text)` gives a label's width in the same units as x.
 */
export function placeRowLabels(items, { left, right, gap = 6, maxTiers = 3, measure }) {
  const order = items.map((item, i) => ({ ...item, i })).sort((a, b) => a.x - b.x || a.i - b.i);
  const span = Math.max(0, right - left);
  let tiers = 1;
  while (tiers < maxTiers && order.length > tiers) {
    const rows = Array.from({ length: tiers }, (_, t) => order.filter((_, k) => k % tiers === t));
    if (rows.every((row) => rowWidth(row.map((it) => ({ width: measure(it.text) })), gap) <= span)) break;
    tiers += 1;
  }
  const placed = new Array(items.length);
  for (let t = 0; t < tiers; t += 1) {
    const row = order.filter((_, k) => k % tiers === t);
    const budget = row.length ? (span - gap * (row.length - 1)) / row.length : span;
    let widths = row.map((it) => measure(it.text));
    let texts = row.map((it) => it.text);
    if (rowWidth(widths.map((width) => ({ width })), gap) > span) {
      texts = row.map((it) => elide(it.text, Math.max(0, budget), measure));
      widths = texts.map((text) => Math.min(measure(text), Math.max(0, budget)));
    }
    const starts = packRow(row.map((it, k) => ({ x: it.x, width: widths[k] })), left, right, gap);
    row.forEach((it, k) => {
      placed[it.i] = {
        key: it.key, text: texts[k], full: it.text, tier: t, anchorX: it.x,
        x0: starts[k], x1: starts[k] + widths[k],
      };
    });
  }
  return placed;
}

/**
 * Move boxes ({x0, y0, x1, y1}, plus anything else) apart until none overlap (or `rounds` run
 * out); returns new boxes, same order. `pad` is kept free between boxes; `xCost` > 1 prefers
 * vertical moves (a panel that scrolls down rather than sideways). Deterministic.
 */
export function separateBoxes(boxes, { pad = 2, rounds = 400, xCost = 1 } = {}) {
  const out = boxes.map((b) => ({ ...b }));
  const padded = (b) => ({ x0: b.x0 - pad / 2, y0: b.y0 - pad / 2, x1: b.x1 + pad / 2, y1: b.y1 + pad / 2 });
  for (let round = 0; round < rounds; round += 1) {
    let moved = false;
    for (let i = 0; i < out.length; i += 1) {
      for (let j = i + 1; j < out.length; j += 1) {
        const a = padded(out[i]);
        const b = padded(out[j]);
        if (!boxesOverlap(a, b)) continue;
        const dx = Math.min(a.x1 - b.x0, b.x1 - a.x0);
        const dy = Math.min(a.y1 - b.y0, b.y1 - a.y0);
        const horizontal = dx * xCost <= dy;
        const centerA = horizontal ? a.x0 + a.x1 : a.y0 + a.y1;
        const centerB = horizontal ? b.x0 + b.x1 : b.y0 + b.y1;
        const sign = centerA < centerB || (centerA === centerB && i < j) ? -1 : 1;
        const shift = ((horizontal ? dx : dy) + 0.02) / 2;
        const [axis0, axis1] = horizontal ? ["x0", "x1"] : ["y0", "y1"];
        out[i][axis0] += sign * shift;
        out[i][axis1] += sign * shift;
        out[j][axis0] -= sign * shift;
        out[j][axis1] -= sign * shift;
        moved = true;
      }
    }
    if (!moved) break;
  }
  return out;
}

/**
 * Word-wrap `text` into at most `maxLines` lines of at most `maxChars` characters; words longer
 * than a line are cut; text that does not fit ends with "…" on the last line.
 */
export function wrapLabel(text, { maxChars = 20, maxLines = 3 } = {}) {
  const lines = [];
  let line = "";
  for (let word of String(text).split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length <= maxChars) {
      line = `${line} ${word}`;
      continue;
    }
    if (line) lines.push(line);
    while (word.length > maxChars) {
      lines.push(word.slice(0, maxChars));
      word = word.slice(maxChars);
    }
    line = word;
  }
  if (line) lines.push(line);
  if (lines.length <= maxLines) return lines;
  const out = lines.slice(0, maxLines);
  const last = out[maxLines - 1];
  out[maxLines - 1] = `${last.length >= maxChars ? last.slice(0, maxChars - 1) : last}…`;
  return out;
}
