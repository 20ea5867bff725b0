// The page of a report being written becomes the finished report by swapping its whole article,
// whose header is taller: keep the section the reader is in where it was on the screen.
(function () {
  let kept = null;

  document.addEventListener("htmx:beforeSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "report") return;
    kept = null;
    for (const heading of document.querySelectorAll("#report .report__body h2[id]")) {
      const top = heading.getBoundingClientRect().top;
      if (top > window.innerHeight / 2) break;
      kept = { id: heading.id, top: top };
    }
  });

  document.addEventListener("htmx:load", function (event) {
    if (!kept || event.target.id !== "report") return;
    const heading = document.getElementById(kept.id);
    if (heading) window.scrollBy(0, heading.getBoundingClientRect().top - kept.top);
    kept = null;
  });
})();
