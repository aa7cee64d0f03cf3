// Colours come from CSS custom properties on the viewer root, so both themes live in viewer.css
// and canvas drawing, SVG export and DOM panels agree.

const KEYS = [
  "bg", "fg", "muted", "grid", "pos", "neg", "feature", "error", "embedding", "logit",
  "pinned", "clicked", "hover", "group", "search", "supernode", "focus",
];

export function readPalette(root) {
  const style = getComputedStyle(root);
  const palette = {};
  for (const key of KEYS) palette[key] = style.getPropertyValue(`--gbv-${key}`).trim() || "#888";
  palette.font = style.getPropertyValue("--gbv-font").trim() || "system-ui, sans-serif";
  return palette;
}

export function preferredTheme() {
  return globalThis.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}
