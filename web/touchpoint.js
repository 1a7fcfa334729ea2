/* Touchpoint website snippet: next-best offers for a page's slots, without flicker.
 *
 *   <script src="https://touchpoint.example/sdk/touchpoint.js" data-key="WEB_KEY"
 *           data-identity="SIGNED_IDENTITY" data-timeout="600"></script>
 *   <div data-touchpoint-slot="homepage_hero">the page's own fallback</div>
 *
 * Slots are hidden until their offers arrive, and shown with their fallback when the answer
 * fails or takes longer than data-timeout ms (default 600). One request asks for every slot
 * of the page (one action per slot, in the page's order; the placement of a single slot is
 * sent). Each shown offer reports an `impression`, and a click on it a `click`, carrying the
 * decision id, with fetch `keepalive` so a click that leaves the page is not lost.
 * `data-touchpoint-customer` on the script (or the identity) names the customer.
 * Touchpoint.decide(options) and Touchpoint.report(...) are there for pages that render
 * themselves; `window.touchpointRender = function (slot, action, decision) {...}` replaces the
 * default rendering (a link naming the offer, data-offer-id on the slot). */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script) return;
  var data = script.dataset;
  // The service: where the script came from, unless data-base names another.
  var base = data.base || script.src.replace(/\/sdk\/touchpoint\.js(\?.*)?$/, "");
  var identity = data.identity || "";
  var customer = data.customer || identity.split(".").slice(0, -2).join(".");
  var timeout = parseInt(data.timeout || "600", 10);
  var hide = document.createElement("style");
  hide.textContent = "[data-touchpoint-slot]{visibility:hidden}";
  (document.head || document.documentElement).appendChild(hide);
  function reveal() {
    if (hide.parentNode) hide.parentNode.removeChild(hide);
  }
  function headers() {
    var h = { "content-type": "application/json" };
    if (data.key) h.authorization = "Bearer " + data.key;
    if (identity) h["x-touchpoint-identity"] = identity;
    return h;
  }
  function id() {
    var b = new Uint8Array(12);
    crypto.getRandomValues(b);
    return "tp-" + Array.prototype.map.call(b, function (x) {
      return ("0" + x.toString(16)).slice(-2);
    }).join("");
  }
  function report(name, decision, action) {
    return fetch(base + "/v1/events", {
      method: "POST", headers: headers(), keepalive: true,
      body: JSON.stringify({
        event_id: id(), customer_id: customer, type: "interaction", name: name,
        channel: "web", at: new Date().toISOString(),
        offer_id: action.offer_id, decision_id: decision.decision_id
      })
    }).catch(function () {});
  }
  function decide(options) {
    var body = { customer_id: options.customer || customer, touchpoint: options.touchpoint || "web",
      limit: options.limit || 1 };
    if (options.placement) body.placement = options.placement;
    if (options.context) body.context = options.context;
    var controller = typeof AbortController === "function" ? new AbortController() : null;
    var timer = setTimeout(function () { if (controller) controller.abort(); }, options.timeout || timeout);
    return fetch(base + "/v1/decisions", {
      method: "POST", headers: headers(), body: JSON.stringify(body),
      signal: controller ? controller.signal : undefined
    }).then(function (r) {
      if (!r.ok) throw new Error("touchpoint answered " + r.status);
      return r.json();
    }).finally(function () { clearTimeout(timer); });
  }
  function render(slot, action, decision) {
    if (typeof window.touchpointRender === "function") {
      window.touchpointRender(slot, action, decision);
    } else {
      var a = document.createElement("a");
      a.href = slot.getAttribute("data-href") || "#";
      a.className = "touchpoint-offer";
      a.textContent = action.offer_id;
      slot.textContent = "";
      slot.appendChild(a);
    }
    slot.setAttribute("data-offer-id", action.offer_id);
    slot.setAttribute("data-decision-id", decision.decision_id);
    slot.addEventListener("click", function () { report("click", decision, action); });
    report("impression", decision, action);
  }
  function run() {
    var slots = Array.prototype.slice.call(document.querySelectorAll("[data-touchpoint-slot]"));
    if (!slots.length || !customer) return reveal();
    var done = false;
    var fallback = setTimeout(function () { done = true; reveal(); }, timeout);
    decide({
      limit: slots.length,
      placement: slots.length === 1 ? slots[0].getAttribute("data-touchpoint-slot") : undefined
    }).then(function (decision) {
      if (done) return;
      slots.forEach(function (slot, i) {
        if (decision.actions[i]) render(slot, decision.actions[i], decision);
      });
    }).catch(function () {}).finally(function () { clearTimeout(fallback); reveal(); });
  }
  window.Touchpoint = { decide: decide, report: report, render: render };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", run);
  else run();
})();
