// Opens the agent screen on a customer while the service's store is down; prints the
// message the agent sees. Usage: node degraded.cjs SERVICE_URL CUSTOMER SCREENSHOT_PATH
const path = require("path");
const { chromium } = require(path.join(process.env.TOUCHPOINT_BROWSER_DEPS, "node_modules", "playwright-core"));

(async () => {
  const [base, customer, shot] = process.argv.slice(2);
  const profile = require("fs").mkdtempSync(path.join(require("os").tmpdir(), "tp-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 720 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = browser.pages()[0] || (await browser.newPage());
  await page.goto(`${base}/agent?customer_id=${encodeURIComponent(customer)}`);
  await page.locator("#message.error").waitFor({ timeout: 20000 });
  const message = (await page.locator("#message").textContent()).trim();
  await page.screenshot({ path: shot });
  console.log(JSON.stringify({ message }));
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
