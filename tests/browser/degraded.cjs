// Opens the agent screen on a customer while the service's store is down; prints the
// message the agent sees. Usage: node degraded.cjs SERVICE_URL CUSTOMER SCREENSHOT_PATH
const { launch } = require("./chromium.cjs");

(async () => {
  const [base, customer, shot] = process.argv.slice(2);
  const { browser, page } = await launch();
  await page.goto(`${base}/agent?customer_id=${encodeURIComponent(customer)}`);
  await page.locator("#message.error").waitFor({ timeout: 20000 });
  const message = (await page.locator("#message").textContent()).trim();
  await page.screenshot({ path: shot });
  console.log(JSON.stringify({ message }));
  await browser.close();
})().catch((e) => { console.error(e); process.exit(1); });
