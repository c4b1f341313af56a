// PéK pages: after htmx swaps a part of a page (an action on the group page), the person
// stays where they were. The control they used keeps the focus and its place on the
// screen; when the answer no longer has it (an accepted application leaves its list),
// the nearest enclosing part that is still there keeps its place and its first control
// gets the focus. What happened is announced by the page's live region (#announce,
// filled by the answer itself, out of band). Everything works without this file.
(function () {
  'use strict';
  var FOCUSABLE = 'button:not([disabled]), a[href], input:not([type=hidden]), select, textarea, summary';
  var control = null; // the control of the request in flight
  var used = null; // its enclosing ids (itself first when it has one)
  var places = null; // where each of them was on the screen just before the swap

  function enclosing(el) {
    var ids = [];
    for (var e = el; e && e !== document.body && e.id !== 'main'; e = e.parentElement) {
      if (e.id) ids.push({ id: e.id, self: e === el });
    }
    return ids;
  }

  // Before htmx disables the form's button (which takes the focus away from it).
  document.addEventListener('htmx:beforeRequest', function (ev) {
    var a = document.activeElement;
    if (!a || a === document.body) {
      // A click that did not focus (some browsers): the submitter's form.
      a = ev.detail.elt;
    }
    control = a;
    used = enclosing(a);
  });

  document.addEventListener('htmx:beforeSwap', function () {
    if (!used) return;
    places = used.map(function (p) {
      var el = document.getElementById(p.id);
      return { id: p.id, self: p.self, top: el ? el.getBoundingClientRect().top : 0 };
    });
    used = null;
  });

  document.addEventListener('htmx:afterSettle', function () {
    if (!places) return;
    var list = places;
    places = null;
    if (control && control.isConnected) {
      // Not replaced (a scoreboard cell, the search box): it keeps its place; only the
      // focus comes back if disabling its button took it away.
      if (document.activeElement === document.body) control.focus({ preventScroll: true });
      return;
    }
    var scrolled = false;
    for (var i = 0; i < list.length; i++) {
      var el = document.getElementById(list[i].id);
      if (!el) continue;
      if (!scrolled) {
        window.scrollBy(0, el.getBoundingClientRect().top - list[i].top);
        scrolled = true;
      }
      var target = list[i].self ? el : el.querySelector(FOCUSABLE);
      if (target) {
        if (document.activeElement !== target) target.focus({ preventScroll: true });
        return;
      }
    }
  });
})();
