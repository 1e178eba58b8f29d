// Palisade console: small enhancements over server-rendered pages. Everything works without
// this script; it only adds the live tail and a keyboard shortcut.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  // "/" focuses the search or explorer box, as in most search tools.
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    const typing = target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement;
    if (event.key === "/" && !typing) {
      const box = document.getElementById("query") || document.getElementById("explorer-query");
      if (box) {
        event.preventDefault();
        box.focus();
      }
    }
  });

  // Live tail: with ?live=1 the results are fetched again every 5 seconds.
  const parameters = new URLSearchParams(window.location.search);
  const table = document.querySelector("table#alerts tbody");
  if (parameters.get("live") === "1" && table) {
    const status = document.createElement("p");
    status.className = "live-status";
    status.setAttribute("role", "status");
    status.textContent = "Live: refreshing every 5 seconds.";
    table.closest("section").prepend(status);
    const refresh = async () => {
      try {
        const response = await fetch(window.location.href, { credentials: "same-origin" });
        if (!response.ok) {
          status.textContent = "Live tail stopped: the server answered " + response.status + ".";
          return;
        }
        const page = new DOMParser().parseFromString(await response.text(), "text/html");
        const fresh = page.querySelector("table#alerts tbody");
        const current = document.querySelector("table#alerts tbody");
        if (fresh && current) {
          current.replaceWith(fresh);
        }
        status.textContent = "Live: updated " + new Date().toLocaleTimeString() + ".";
        window.setTimeout(refresh, 5000);
      } catch (error) {
        status.textContent = "Live tail stopped: " + error + ".";
      }
    };
    window.setTimeout(refresh, 5000);
  }
});
