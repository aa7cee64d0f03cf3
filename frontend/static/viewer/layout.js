// Neuronpedia-style layout: token positions across, embeddings at the bottom, one row per layer,
// logits on top. A position's column is as wide as its busiest row needs; nodes in a cell are
// spread evenly and staggered up and down when they would overlap. The logit row holds nothing
// else, so its nodes may spread beyond their column (`logitSpacing` apart, as far as the width
// allows): their labels then sit right above them instead of piling up.

export const MARGIN = { left: 40, right: 24, top: 62, bottom: 54 };

function cellCounts(model, visible) {
  const counts = new Int32Array(model.nRows * model.nPos);
  for (const node of model.nodes) {
    if (visible[node.index]) counts[node.row * model.nPos + node.ctx] += 1;
  }
  return counts;
}

function columnWidths(model, counts, innerWidth) {
  const colMax = new Int32Array(model.nPos);
  for (let row = 0; row < model.nRows; row += 1) {
    for (let ctx = 0; ctx < model.nPos; ctx += 1) {
      colMax[ctx] = Math.max(colMax[ctx], counts[row * model.nPos + ctx]);
    }
  }
  const busiest = Math.max(1, ...colMax);
  const weights = Array.from(colMax, (c) => Math.max(c, 1, busiest * 0.15));
  const total = weights.reduce((a, b) => a + b, 0);
  let x = MARGIN.left;
  const columns = weights.map((w, ctx) => {
    const width = (innerWidth * w) / total;
    const column = { ctx, x0: x, x1: x + width, center: x + width / 2, max: Math.max(1, colMax[ctx]) };
    x += width;
    return column;
  });
  return columns;
}

/** x of the first node of a logit cell and the spacing, kept inside the drawing area. */
function logitCell(column, count, spacing, logitSpacing, width) {
  const inner = width - MARGIN.left - MARGIN.right;
  const wide = Math.max(spacing, Math.min(logitSpacing, inner / Math.max(1, count)));
  const span = count * wide;
  const start = Math.max(MARGIN.left, Math.min(column.center - span / 2, width - MARGIN.right - span));
  return { start, spacing: wide };
}

export function computeLayout(model, visible, width, height, { logitSpacing = 0 } = {}) {
  const innerWidth = Math.max(50, width - MARGIN.left - MARGIN.right);
  const innerHeight = Math.max(50, height - MARGIN.top - MARGIN.bottom);
  const counts = cellCounts(model, visible);
  const columns = columnWidths(model, counts, innerWidth);
  const rowH = model.nRows > 1 ? innerHeight / (model.nRows - 1) : innerHeight;
  const rowY = Array.from({ length: model.nRows }, (_, row) => MARGIN.top + (model.nRows - 1 - row) * rowH);
  const spacings = columns.map((c) => (c.x1 - c.x0) / c.max);
  const minSpacing = Math.min(...spacings);
  const stagger = minSpacing < 6;
  const r = Math.max(1.5, Math.min(6, (stagger ? 2 : 1) * minSpacing * 0.42, rowH * 0.18));

  const x = new Float32Array(model.nodes.length).fill(Number.NaN);
  const y = new Float32Array(model.nodes.length).fill(Number.NaN);
  const seen = new Int32Array(model.nRows * model.nPos);
  for (const index of model.order) {
    if (!visible[index]) continue;
    const node = model.nodes[index];
    const cell = node.row * model.nPos + node.ctx;
    const column = columns[node.ctx];
    let spacing = spacings[node.ctx];
    let start = column.center - (counts[cell] * spacing) / 2;
    if (node.kind === "logit") ({ start, spacing } = logitCell(column, counts[cell], spacing, logitSpacing, width));
    const i = seen[cell]++;
    x[index] = start + (i + 0.5) * spacing;
    const offset = stagger && counts[cell] > 1 ? (i % 2 ? 0.16 : -0.16) * rowH : 0;
    y[index] = rowY[node.row] + offset;
  }
  return { x, y, r, rowY, rowH, columns, width, height };
}
