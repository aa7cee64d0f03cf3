// The feature page's activation histogram as a chart with axes: activation on a log x axis (the
// builder's bins are log-spaced), count on a log y axis (the strongest activations are rare), both
// with ticks and titles. The bins come from the page (#histogram-chart data-bins: pages.py
// _histogram); the list of bins beside it stays for screen readers.
import d3 from "../viewer/d3.js";

const WIDTH = 480;
const HEIGHT = 180;
const MARGIN = { top: 8, right: 12, bottom: 40, left: 52 };

/**
 * Bins with numeric bounds for a log axis: [{low, high, count}]. The open ends (below the first
 * edge, above the last) get the width of their neighbour; without edges the bins are numbered.
 */
export function chartBins(bins) {
  const list = Array.isArray(bins) ? bins : [];
  const edged = list.length > 2 && list.slice(1, -1).every((b) => b.low > 0 && b.high > b.low);
  return list.map((bin, i) => {
    const count = Math.max(0, Number(bin.count) || 0);
    if (!edged) return { low: i + 1, high: i + 2, count, range: String(bin.range ?? `bin ${i + 1}`) };
    let { low, high } = bin;
    if (!(low > 0)) low = list[i + 1] ? high * (high / list[i + 1].high) : high / 10; // (0, e0)
    if (!(high > low)) high = low * (list[i - 1] ? low / list[i - 1].low : 10); // [e_n, inf)
    return { low, high, count, range: String(bin.range ?? "") };
  });
}

/** Count ticks: 1, 2, 5, 10, 20, 50... up to the peak; powers of ten alone when those are too many. */
export function countTicks(peak) {
  const ticks = [];
  for (let p = 1; p <= Math.max(1, peak); p *= 10) for (const m of [1, 2, 5]) if (m * p <= Math.max(1, peak)) ticks.push(m * p);
  return ticks.length > 6 ? ticks.filter((t) => Math.log10(t) % 1 === 0) : ticks;
}

/** The bins that hold firings, with one empty bin of margin on each side. */
function shown(bins) {
  const first = bins.findIndex((b) => b.count > 0);
  if (first < 0) return [];
  let last = bins.length - 1;
  while (bins[last].count === 0) last -= 1;
  return bins.slice(Math.max(0, first - 1), Math.min(bins.length, last + 2));
}

/** Draw the chart into `figure` (an element with data-bins); returns the SVG, or null without firings. */
export function drawHistogram(figure) {
  let raw = [];
  try {
    raw = JSON.parse(figure.dataset.bins || "[]");
  } catch {
    return null;
  }
  const bins = shown(chartBins(raw));
  if (!bins.length) return null;
  const peak = d3.max(bins, (b) => b.count);
  const x = d3.scaleLog().domain([bins[0].low, bins[bins.length - 1].high]).range([MARGIN.left, WIDTH - MARGIN.right]);
  const floor = HEIGHT - MARGIN.bottom;
  // log counts from just under 1, so a bin that fired once still shows as a bar
  const y = d3.scaleLog().domain([0.7, Math.max(2, peak * 1.2)]).range([floor, MARGIN.top]);
  const total = d3.sum(bins, (b) => b.count);
  const svg = d3.create("svg")
    .attr("class", "gb-histogram-svg")
    .attr("viewBox", `0 0 ${WIDTH} ${HEIGHT}`)
    .attr("role", "img")
    .attr("aria-label", `Histogram of ${total.toLocaleString()} activations: count by activation, both on log scales`);
  svg.append("g").attr("class", "gb-hist-bars")
    .selectAll("rect")
    .data(bins.filter((b) => b.count > 0))
    .join("rect")
    .attr("x", (b) => x(b.low) + 0.5)
    .attr("width", (b) => Math.max(1, x(b.high) - x(b.low) - 1))
    .attr("y", (b) => y(b.count))
    .attr("height", (b) => Math.max(1, floor - y(b.count)))
    .append("title")
    .text((b) => `${b.range}: ${b.count.toLocaleString()}`);
  svg.append("g").attr("class", "gb-axis gb-axis-x")
    .attr("transform", `translate(0,${HEIGHT - MARGIN.bottom})`)
    .call(d3.axisBottom(x).ticks(5, "~g"));
  svg.append("g").attr("class", "gb-axis gb-axis-y")
    .attr("transform", `translate(${MARGIN.left},0)`)
    .call(d3.axisLeft(y).tickValues(countTicks(peak)).tickFormat(d3.format("~s")));
  svg.append("text").attr("class", "gb-axis-title")
    .attr("x", (MARGIN.left + WIDTH - MARGIN.right) / 2).attr("y", HEIGHT - 6).attr("text-anchor", "middle")
    .text("Activation (log scale)");
  svg.append("text").attr("class", "gb-axis-title")
    .attr("transform", `translate(14,${(MARGIN.top + HEIGHT - MARGIN.bottom) / 2}) rotate(-90)`)
    .attr("text-anchor", "middle")
    .text("Count (log scale)");
  figure.replaceChildren(svg.node());
  return svg.node();
}
