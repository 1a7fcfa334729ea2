// Debian's Chromium, headless, through playwright-core (TOUCHPOINT_BROWSER_DEPS), with a
// fresh profile and the flags that keep it from reaching for hosts this machine cannot
// reach. Shared by the browser tests.
const path = require("path");
const fs = require("fs");
const os = require("os");
const { chromium } = require(path.join(process.env.TOUCHPOINT_BROWSER_DEPS, "node_modules", "playwright-core"));

exports.launch = async function launch(viewport = { width: 1280, height: 720 }) {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), "tp-chromium-"));
  const browser = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    viewport,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
      "--disable-component-update", "--disable-sync", "--no-first-run"],
  });
  const page = browser.pages()[0] || (await browser.newPage());
  return { browser, page };
};
