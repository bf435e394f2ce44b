// Follows a payout that moves by itself: polls its JSON (data-status-url) and reloads the page when the
// status differs from the one shown. Without scripts the page refreshes itself (<noscript> meta refresh).
"use strict";
(() => {
  const shown = document.getElementById("payout-status");
  const url = shown && shown.dataset.statusUrl;
  if (!url) return;
  const poll = async () => {
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok && (await response.json()).status !== shown.dataset.status) {
        window.location.reload();
        return;
      }
    } catch {
      // the server is unreachable for a moment: try again
    }
    window.setTimeout(poll, 1000);
  };
  window.setTimeout(poll, 1000);
})();
