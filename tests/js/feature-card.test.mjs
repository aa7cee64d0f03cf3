import assert from "node:assert/strict";
import { test } from "node:test";

import {
  cutContext, densityOf, formatPercent, topContexts, topLogits, visibleToken,
} from "../../frontend/static/viewer/feature-card.js";

const words = (n) => Array.from({ length: n }, (_, i) => `w${i}`);

test("cutContext keeps the tokens around the most active one and marks it", () => {
  const acts = words(30).map((_, i) => (i === 20 ? 9 : i === 5 ? 3 : 0));
  const context = cutContext({ tokens: words(30), tokens_acts_list: acts }, { before: 4, after: 2 });
  assert.deepEqual(context.tokens.map((t) => t.text), ["w16", "w17", "w18", "w19", "w20", "w21", "w22"]);
  assert.deepEqual(context.tokens.filter((t) => t.peak).map((t) => t.text), ["w20"]);
  assert.equal(context.cutBefore, true);
  assert.equal(context.cutAfter, true);
  assert.equal(context.max, 9);
  // max_index, when the dashboard gives it, wins over the argmax
  const given = cutContext({ tokens: words(5), tokens_acts_list: [0, 5, 0, 4, 0], max_index: 3 });
  assert.deepEqual(given.tokens.filter((t) => t.peak).map((t) => t.text), ["w3"]);
  assert.equal(given.cutBefore, false);
});

test("topContexts takes the strongest examples first and shades them on one scale", () => {
  const details = {
    examples_quantiles: [
      { quantile_name: "Top activations", examples: [
        { tokens: ["a", "b"], tokens_acts_list: [0, 10] },
        { tokens: ["c", "d"], tokens_acts_list: [5, 0] },
      ] },
      { quantile_name: "Lower", examples: [{ tokens: ["e"], tokens_acts_list: [1] }, { tokens: ["f"], tokens_acts_list: [1] }] },
    ],
  };
  const contexts = topContexts(details, { count: 3 });
  assert.equal(contexts.length, 3);
  assert.deepEqual(contexts.map((c) => c.tokens.find((t) => t.peak).text), ["b", "c", "e"]);
  assert.equal(contexts[0].tokens[1].share, 1);
  assert.equal(contexts[1].tokens[0].share, 0.5);
  assert.deepEqual(topContexts({}), []);
  assert.deepEqual(topContexts(null), []);
});

test("topLogits, densityOf and formatPercent read what dashboards carry", () => {
  assert.deepEqual(topLogits({ top_logits: [" a", " b", " c"], top_logits_values: [2, 1] }, 2),
    [{ token: " a", value: 2 }, { token: " b", value: 1 }]);
  assert.deepEqual(topLogits({}), []);
  assert.equal(densityOf({ activation_frequency: 0.012 }), 0.012);
  assert.equal(densityOf({ frac_nonzero: 0.002 }), 0.002);
  assert.equal(densityOf({}), null);
  assert.equal(densityOf(null), null);
  assert.equal(formatPercent(0.0123), "1.23%");
  assert.equal(formatPercent(0.00001), "1.0e-3%");
});

test("visibleToken keeps a context on one line", () => {
  assert.equal(visibleToken("a\nb\r\nc\td"), "a↵b↵c→d");
  assert.equal(visibleToken(" plays"), " plays");
});
