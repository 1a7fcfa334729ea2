// Drives the agent screen in headless Chromium: opens a customer, enters the key when asked
// (by keyboard), reads the next best actions, records "Declined" on the first, and reads the
// actions again; then opens an unknown customer. Prints one JSON line; writes a screenshot.
// Usage: node agent.cjs SERVICE_URL CUSTOMER KEY SCREENSHOT_PATH
const { launch } = require("./chromium.cjs");

(async () => {
  const [base, customer, key, shot] = process.argv.slice(2);
  const { browser, page } = await launch();
  await page.goto(`${base}/agent?customer_id=${encodeURIComponent(customer)}`);
  // The service has keys: the screen asks for one, once.
  await page.locator("#key").waitFor({ state: "visible", timeout: 10000 });
  const asked = (await page.locator("#message").textContent()).trim();
  await page.keyboard.type(key);
  await page.keyboard.press("Enter");
  await page.locator("#actions .action").first().waitFor({ timeout: 10000 });
  const offers = async () => page.locator("#actions .action").evaluateAll((els) => els.map((e) => e.getAttribute("data-offer-id")));
  const before = await offers();
  const who = (await page.locator("#who").textContent()).trim();
  const value = (await page.locator("#value").textContent()).trim();
  const reasons = (await page.locator("#actions .action .why").first().textContent()).trim();
  await page.screenshot({ path: shot });
  await page.locator("#actions .action").first().locator("button[data-outcome=declined]").click();
  await page.locator("#message", { hasText: "Recorded" }).waitFor({ timeout: 10000 });
  await page.waitForFunction((first) => {
    const el = document.querySelector("#actions .action");
    return el && el.getAttribute("data-offer-id") !== first;
  }, before[0], { timeout: 10000 });
  const after = await offers();
  const recorded = (await page.locator("#message").textContent()).trim();
  await page.goto(`${base}/agent?customer_id=c-nobody-here`);
  await page.locator("#message.error").waitFor({ timeout: 10000 });
  const unknown = (await page.locator("#message").textContent()).trim();
  console.log(JSON.stringify({ asked, before, after, recorded, unknown, who, value, reasons }));
  await browser.close();
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
