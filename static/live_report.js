// On the page of a report being written, each poll swaps in the sections finished since, and at
// the end the finished report replaces the whole article (its header is taller). Keep the section
// the reader is in where it was on the screen. The page opts out of the browser's own scroll
// anchoring (app.css), which would correct a second time.
(function () {
  let kept = null;

  // The first heading at or below the top of the screen: what is above it, the section being
  // read, is written already, so only what follows it changes.
  document.addEventListener("htmx:beforeSwap", function () {
    kept = null;
    for (const heading of document.querySelectorAll("#report .report__body h2[id]")) {
      kept = { id: heading.id, top: heading.getBoundingClientRect().top };
      if (kept.top >= 0) break;
    }
  });

  // Fired on each element swapped in, once all of them are in the page: the first one is enough.
  document.addEventListener("htmx:afterSwap", function () {
    if (!kept) return;
    const heading = document.getElementById(kept.id);
    if (heading) window.scrollBy(0, heading.getBoundingClientRect().top - kept.top);
    kept = null;
  });
})();
