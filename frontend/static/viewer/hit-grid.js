// Uniform grid over node positions (world coordinates) for O(1) hover and click hit tests.

export function buildHitGrid(layout, visible) {
  const cell = Math.max(6, layout.r * 3);
  const cols = Math.max(1, Math.ceil(layout.width / cell) + 1);
  const rows = Math.max(1, Math.ceil(layout.height / cell) + 1);
  const buckets = new Map(); // cell number -> node indices
  for (let i = 0; i < visible.length; i += 1) {
    if (!visible[i]) continue;
    const cx = Math.min(cols - 1, Math.max(0, Math.floor(layout.x[i] / cell)));
    const cy = Math.min(rows - 1, Math.max(0, Math.floor(layout.y[i] / cell)));
    const key = cy * cols + cx;
    if (!buckets.has(key)) buckets.set(key, []);
    buckets.get(key).push(i);
  }
  return { cell, cols, rows, buckets, layout };
}

/** Index of the nearest node within `radius` of world point (x, y), or -1. */
export function nearestNode(grid, x, y, radius) {
  const { cell, cols, rows, buckets, layout } = grid;
  const reach = Math.ceil(radius / cell);
  const cx = Math.floor(x / cell);
  const cy = Math.floor(y / cell);
  let best = -1;
  let bestDist = radius * radius;
  for (let gy = Math.max(0, cy - reach); gy <= Math.min(rows - 1, cy + reach); gy += 1) {
    for (let gx = Math.max(0, cx - reach); gx <= Math.min(cols - 1, cx + reach); gx += 1) {
      for (const i of buckets.get(gy * cols + gx) ?? []) {
        const dx = layout.x[i] - x;
        const dy = layout.y[i] - y;
        const dist = dx * dx + dy * dy;
        if (dist <= bestDist) {
          bestDist = dist;
          best = i;
        }
      }
    }
  }
  return best;
}
