// Drives the example shop page in headless Chromium (Debian's /usr/bin/chromium, through
// playwright-core): waits for the hero slot to be visible, reports what it shows, clicks the
// offer when there is one, and writes a screenshot. Prints one JSON line.
// Usage: node shop.cjs PAGE_URL SCREENSHOT_PATH
const { launch } = require("./chromium.cjs");

(async () => {
  const [url, shot] = process.argv.slice(2);
  const { browser, page } = await launch();
  const started = Date.now();
  await page.goto(url);
  const hero = page.locator("#hero");
  await hero.waitFor({ state: "visible", timeout: 10000 });
  const shownAfterMs = Date.now() - started;
  const text = (await hero.textContent()).trim();
  const offer = await hero.getAttribute("data-offer-id");
  const decision = await hero.getAttribute("data-decision-id");
  if (offer) {
    await page.locator("#hero a").click();
    await page.waitForTimeout(300);
  }
  await page.screenshot({ path: shot });
  console.log(JSON.stringify({ text, offer, decision, shownAfterMs }));
  await browser.close();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
