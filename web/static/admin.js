"use strict";
// Follows a retraining started from the dashboard; reloads the page when it ends.
(function () {
  const state = document.getElementById("retrain-state");
  if (!state || state.dataset.running !== "true") return;
  const button = document.getElementById("retrain");
  async function poll() {
    try {
      const response = await fetch("/admin/retrain/status", { credentials: "same-origin" });
      if (!response.ok) return;
      const status = await response.json();
      if (status.running) {
        state.textContent = "running for " + Math.round(status.seconds || 0) + " s…" +
          (status.progress ? ": " + status.progress : "");
        setTimeout(poll, 2000);
      } else {
        state.textContent = status.outcome || "finished";
        if (button) button.disabled = false;
        setTimeout(function () { window.location.reload(); }, 1500);
      }
    } catch (err) {
      setTimeout(poll, 5000);
    }
  }
  setTimeout(poll, 2000);
})();
