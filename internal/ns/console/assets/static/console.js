// Wharf console: progressive enhancement only. Every page works without
// this script; it adds live relocation progress on the Resource Manager,
// waits for the answer of a Check, and selects "Custom" when a path is typed.
(function () {
  'use strict';

  // Typing a custom path selects the Custom option next to it.
  document.querySelectorAll('input[data-custom-radio]').forEach(function (input) {
    input.addEventListener('input', function () {
      var radio = document.getElementById(input.getAttribute('data-custom-radio'));
      if (radio) { radio.checked = true; }
    });
  });

  // Reloading must not throw away what someone is typing.
  function busy() {
    var el = document.activeElement;
    return el && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName) && el.type !== 'submit';
  }

  function getJSON(url) {
    return fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store' })
      .then(function (r) {
        if (r.status === 401) { window.location.reload(); throw new Error('logged out'); }
        if (!r.ok) { throw new Error('HTTP ' + r.status); }
        return r.json();
      });
  }

  // Resource Manager: follow the relocation. While an attempt runs the
  // progress bar moves; when one starts or ends the page reloads.
  var watch = document.getElementById('watch');
  if (watch) {
    var url = watch.getAttribute('data-status-url');
    var phase = watch.getAttribute('data-phase');
    var tick = function () {
      getJSON(url).then(function (s) {
        if (s.phase !== phase) {
          if (busy()) {
            document.getElementById('reload-notice').hidden = false;
            return;
          }
          window.location.reload();
          return;
        }
        if (phase === 'running') {
          var bar = document.getElementById('progress-bar');
          if (bar) {
            bar.value = s.progress.percent;
            bar.textContent = s.progress.percent + '%';
            document.getElementById('progress-percent').textContent = s.progress.percent + '%';
            document.getElementById('progress-text').textContent = s.progress.text;
            document.getElementById('relocation-outcome').textContent = s.outcome;
          }
        }
        window.setTimeout(tick, phase === 'running' ? 1000 : 2000);
      }).catch(function () { window.setTimeout(tick, 5000); });
    };
    window.setTimeout(tick, 1000);
  }

  // Settings: wait for a Package Server to answer a Check.
  document.querySelectorAll('[data-task-url]').forEach(function (el) {
    var url = el.getAttribute('data-task-url');
    var tries = 0;
    var poll = function () {
      getJSON(url).then(function (t) {
        if (t.done) { window.location.reload(); return; }
        if (++tries < 240) { window.setTimeout(poll, 1000); }
      }).catch(function () { window.setTimeout(poll, 5000); });
    };
    window.setTimeout(poll, 1000);
  });
})();
