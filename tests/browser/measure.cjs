// What the snippet costs a page: loads the shop page with and without the snippet, in
// alternating rounds, in headless Chromium, and prints medians of the page's own timing
// (DOMContentLoaded and load, from navigation start) and, with the snippet, the time until the
// slot is shown. Usage: node measure.cjs WITH_URL WITHOUT_URL ROUNDS
const { launch } = require("./chromium.cjs");

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };

(async () => {
  const [withUrl, withoutUrl, rounds] = process.argv.slice(2);
  const { browser, page } = await launch();
  const runs = { with: [], without: [] };
  for (let i = 0; i < +rounds + 2; i++) {
    for (const [name, url] of [["with", withUrl], ["without", withoutUrl]]) {
      await page.goto(url, { waitUntil: "load" });
      await page.locator("#hero").waitFor({ state: "visible" });
      const t = await page.evaluate(() => {
        const n = performance.getEntriesByType("navigation")[0];
        return { dcl: n.domContentLoadedEventEnd, load: n.loadEventEnd, shown: performance.now() };
      });
      if (i >= 2) runs[name].push(t); // two warm-up rounds
    }
  }
  const summary = {};
  for (const name of ["with", "without"]) {
    summary[name] = {
      dom_content_loaded_ms: median(runs[name].map((t) => t.dcl)),
      load_ms: median(runs[name].map((t) => t.load)),
    };
  }
  summary.added_dom_content_loaded_ms = summary.with.dom_content_loaded_ms - summary.without.dom_content_loaded_ms;
  summary.added_load_ms = summary.with.load_ms - summary.without.load_ms;
  summary.rounds = +rounds;
  console.log(JSON.stringify(summary));
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
