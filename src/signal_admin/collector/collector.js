/*! signal collector */
/*
 * The browser collector. A site loads it once per page; it exposes one global
 * object (`window._df` unless configured otherwise) with five calls:
 *
 *   _df.page(name?, properties?)     a page view
 *   _df.track(event, properties?)    anything the user did
 *   _df.identify(userId?, traits?)   who the user is, kept for later events
 *   _df.group(groupId, traits?)      the account or company of the user
 *   _df.consent({analytics: true})   the consent categories the user granted
 *
 * Every call becomes one canonical event. Events wait in a queue and are sent
 * together as one batch to `{endpoint}/v1/batch` when `batch_size` of them
 * are waiting or `flush_interval_ms` after the first one, whichever comes
 * first. A batch that fails (network error or a status other than 2xx) is
 * sent once more with the next batch; if that fails too, it is dropped. When
 * the page is hidden or left, what is waiting goes out with sendBeacon.
 *
 * Calls made before this script has loaded: if the global is already an array
 * of calls, such as [["page"], ["track", "Signed Up", {plan: "pro"}]], they are
 * replayed in order once the script runs. The snippet in docs/collector.md
 * makes such a queue.
 *
 * The script is configured when it is built: the build replaces the one
 * placeholder at the bottom of this file with a JSON object (see `config`).
 * It sends only with `Content-Type: text/plain` and no other header, so a
 * browser needs no CORS preflight. It loads no other code.
 */
(function (window, document, config) {
  'use strict';

  var location = window.location;
  var navigator = window.navigator || {};

  // The name of the cookie, the localStorage key and the query parameter
  // that carry the anonymous id; and the localStorage key of the user id.
  var ID_KEY = '_dfid';
  var USER_KEY = '_dfuid';
  var YEAR_SECONDS = 31536000;
  // What an id read from a cookie, storage or a link must look like. Anything
  // else is ignored, so a crafted link cannot plant arbitrary text.
  var SAFE_ID = /^[A-Za-z0-9_.:-]{1,100}$/;
  // Browsers refuse keepalive bodies over 64 KiB; in characters, this many
  // stays under it whatever the text (at most three bytes each).
  var KEEPALIVE_LIMIT = 20000;

  var globalName = config.global_variable;
  var existing = window[globalName];
  if (existing && existing.__signal) {
    return; // Loaded twice on one page: the first copy stays in charge.
  }

  var origin = location.protocol + '//' + location.host;
  var batchUrl = (config.endpoint || origin).replace(/\/+$/, '') + '/v1/batch';
  var batchSize = Math.max(1, config.batch_size);
  var crossDomains = config.cross_domain_domains || [];

  var queue = []; // Waiting events: {event: {...}, retried: bool}.
  var fresh = 0; // How many of them are new, not a failed batch's second try.
  var timer = null;
  var consent = copyConsent(config.consent);

  // --- Identity -----------------------------------------------------------

  function uuid() {
    var crypto = window.crypto;
    if (crypto && crypto.randomUUID) {
      return crypto.randomUUID();
    }
    var bytes = [];
    var i;
    if (crypto && crypto.getRandomValues) {
      bytes = crypto.getRandomValues(new Uint8Array(16));
    } else {
      for (i = 0; i < 16; i++) {
        bytes[i] = Math.floor(Math.random() * 256);
      }
    }
    bytes[6] = (bytes[6] & 0x0f) | 0x40; // version 4
    bytes[8] = (bytes[8] & 0x3f) | 0x80; // RFC 4122 variant
    var hex = '';
    for (i = 0; i < 16; i++) {
      hex += (bytes[i] + 0x100).toString(16).slice(1);
      if (i === 3 || i === 5 || i === 7 || i === 9) {
        hex += '-';
      }
    }
    return hex;
  }

  // localStorage throws when the browser blocks it; the collector then keeps
  // working with the cookie alone.
  function readStorage(key) {
    try {
      return window.localStorage.getItem(key);
    } catch (e) {
      return null;
    }
  }

  function writeStorage(key, value) {
    try {
      if (value === null) {
        window.localStorage.removeItem(key);
      } else {
        window.localStorage.setItem(key, value);
      }
    } catch (e) {
      // Storage is full or blocked; the value lives on in memory.
    }
  }

  function readCookie(name) {
    var cookies = document.cookie ? document.cookie.split(';') : [];
    for (var i = 0; i < cookies.length; i++) {
      var cookie = cookies[i].replace(/^\s+/, '');
      var equals = cookie.indexOf('=');
      if (equals > 0 && cookie.slice(0, equals) === name) {
        try {
          return decodeURIComponent(cookie.slice(equals + 1));
        } catch (e) {
          return null;
        }
      }
    }
    return null;
  }

  function writeCookie(name, value) {
    document.cookie =
      name + '=' + encodeURIComponent(value) +
      '; Max-Age=' + YEAR_SECONDS + '; Path=/; SameSite=Lax' +
      (location.protocol === 'https:' ? '; Secure' : '');
  }

  function safeId(value) {
    return typeof value === 'string' && SAFE_ID.test(value) ? value : null;
  }

  // The anonymous id handed over in a link from one of the cross-domain sites.
  function idFromLandingUrl() {
    if (!crossDomains.length) {
      return null;
    }
    var found = /[?&]_dfid=([^&#]*)/.exec(location.search || '');
    if (!found) {
      return null;
    }
    try {
      return safeId(decodeURIComponent(found[1]));
    } catch (e) {
      return null;
    }
  }

  // The cookie and localStorage both hold the id, so either one surviving is
  // enough; whichever was missing is written again, and the cookie's year
  // starts over.
  function keepAnonymousId(id) {
    writeCookie(ID_KEY, id);
    writeStorage(ID_KEY, id);
    return id;
  }

  var anonymousId = keepAnonymousId(
    idFromLandingUrl() ||
      safeId(readCookie(ID_KEY)) ||
      safeId(readStorage(ID_KEY)) ||
      uuid()
  );
  var userId = readStorage(USER_KEY);

  // --- Events -------------------------------------------------------------

  function now() {
    return new Date().toISOString();
  }

  function isObject(value) {
    return value !== null && typeof value === 'object' && !isArray(value);
  }

  function isArray(value) {
    return Object.prototype.toString.call(value) === '[object Array]';
  }

  function asId(value) {
    if (typeof value === 'number' && isFinite(value)) {
      return String(value);
    }
    return typeof value === 'string' && value !== '' ? value : null;
  }

  function copyConsent(categories) {
    if (!isObject(categories)) {
      return null;
    }
    var copy = {};
    for (var name in categories) {
      if (Object.prototype.hasOwnProperty.call(categories, name)) {
        copy[name] = categories[name] === true;
      }
    }
    return copy;
  }

  function context() {
    var made = {
      page: {
        url: location.href,
        path: location.pathname,
        referrer: document.referrer || '',
        title: document.title || '',
        search: location.search || ''
      },
      userAgent: navigator.userAgent || '',
      locale: navigator.language || ''
    };
    if (consent) {
      made.consent = copyConsent(consent);
    }
    return made;
  }

  // Builds the event and queues a snapshot of it: properties the page changes
  // after the call are not sent, and values JSON cannot hold (functions,
  // cycles) never reach a batch.
  function record(type, fields) {
    var event = {
      type: type,
      anonymousId: anonymousId,
      messageId: uuid(),
      timestamp: now(),
      context: context()
    };
    if (userId) {
      event.userId = userId;
    }
    for (var name in fields) {
      if (fields[name] !== undefined && fields[name] !== null) {
        event[name] = fields[name];
      }
    }
    var snapshot;
    try {
      snapshot = JSON.parse(JSON.stringify(event));
    } catch (e) {
      return; // A cycle in the properties: the event cannot be sent.
    }
    queue.push({ event: snapshot, retried: false });
    fresh++;
    if (fresh >= batchSize) {
      flush();
    } else {
      startTimer();
    }
  }

  function objectOrEmpty(value) {
    return isObject(value) ? value : {};
  }

  // --- Sending ------------------------------------------------------------

  function startTimer() {
    if (timer === null) {
      timer = window.setTimeout(flush, config.flush_interval_ms);
    }
  }

  function takeQueue() {
    if (timer !== null) {
      window.clearTimeout(timer);
      timer = null;
    }
    var taken = queue;
    queue = [];
    fresh = 0;
    return taken;
  }

  function body(items) {
    var batch = [];
    for (var i = 0; i < items.length; i++) {
      batch.push(items[i].event);
    }
    return JSON.stringify({
      pipeline_key: config.pipeline_key,
      sent_at: now(),
      batch: batch
    });
  }

  function flush() {
    var items = takeQueue();
    if (items.length) {
      post(items, body(items));
    }
  }

  // A failed batch goes back to the front of the queue once, so it leaves
  // again with the next batch: when `batch_size` new events have joined it,
  // or when the timer fires. Events that already had their second chance are
  // dropped.
  function sendFailed(items) {
    var again = [];
    for (var i = 0; i < items.length; i++) {
      if (!items[i].retried) {
        items[i].retried = true;
        again.push(items[i]);
      }
    }
    if (again.length) {
      queue = again.concat(queue);
      startTimer();
    }
  }

  function post(items, text) {
    // Handled in a task of its own: when the page is being left, the browser
    // fails its pending requests before `pagehide`, though a keepalive request
    // still arrives. Deferred, the failure is never handled on a page that is
    // gone, so the beacon does not send those events a second time.
    var failed = function () {
      window.setTimeout(function () {
        sendFailed(items);
      }, 0);
    };
    try {
      if (window.fetch) {
        window
          .fetch(batchUrl, {
            method: 'POST',
            body: text,
            headers: { 'Content-Type': 'text/plain' },
            credentials: 'omit',
            // Lets the request finish if the page is closed meanwhile.
            keepalive: text.length < KEEPALIVE_LIMIT
          })
          .then(function (response) {
            if (!response.ok) {
              failed();
            }
          }, failed);
        return;
      }
      var request = new window.XMLHttpRequest();
      request.open('POST', batchUrl, true);
      request.setRequestHeader('Content-Type', 'text/plain');
      request.onload = function () {
        if (request.status < 200 || request.status > 299) {
          failed();
        }
      };
      request.onerror = failed;
      request.send(text);
    } catch (e) {
      failed();
    }
  }

  // The page is going away or into the background: a beacon still reaches
  // the endpoint after the page is gone, where a request might be cancelled.
  function flushWithBeacon() {
    var items = takeQueue();
    if (!items.length) {
      return;
    }
    var text = body(items);
    var sent = false;
    if (navigator.sendBeacon && window.Blob) {
      // False when the browser will not take it, such as a body too large.
      try {
        sent = navigator.sendBeacon(
          batchUrl,
          new window.Blob([text], { type: 'text/plain' })
        );
      } catch (e) {
        sent = false;
      }
    }
    if (!sent) {
      post(items, text);
    }
  }

  // --- Cross-domain links -------------------------------------------------

  function linkedDomain(link) {
    if (link.host === location.host) {
      return false;
    }
    for (var i = 0; i < crossDomains.length; i++) {
      // `*.shop.example` and `shop.example` both take in the subdomains.
      var domain = crossDomains[i].replace(/^\*\./, '');
      var host = domain.indexOf(':') < 0 ? link.hostname : link.host;
      if (host === domain || host.slice(-domain.length - 1) === '.' + domain) {
        return true;
      }
    }
    return false;
  }

  // The link's address with `_dfid` set to this visitor's anonymous id,
  // replacing one the address already had.
  function withAnonymousId(href) {
    var hashAt = href.indexOf('#');
    var hash = hashAt < 0 ? '' : href.slice(hashAt);
    var address = hashAt < 0 ? href : href.slice(0, hashAt);
    address = address.replace(/([?&])_dfid=[^&]*(&|$)/, function (all, lead, tail) {
      return tail ? lead : '';
    });
    var separator = address.indexOf('?') < 0 ? '?' : '&';
    return address + separator + ID_KEY + '=' + encodeURIComponent(anonymousId) + hash;
  }

  function isLink(node) {
    return !!node.href && /^(A|AREA)$/i.test(node.tagName || '');
  }

  // Runs before the browser follows a link (mouse down, click, or Enter),
  // so the address it follows already carries the id.
  function decorateLink(domEvent) {
    var node = domEvent.target;
    while (node && !isLink(node)) {
      node = node.parentNode;
    }
    if (node && /^https?:$/.test(node.protocol) && linkedDomain(node)) {
      node.href = withAnonymousId(node.href);
    }
  }

  // --- The public object --------------------------------------------------

  var api = {
    page: function (name, properties) {
      if (isObject(name)) {
        properties = name;
        name = null;
      }
      record('page', {
        name: typeof name === 'string' ? name : null,
        properties: objectOrEmpty(properties)
      });
    },

    track: function (event, properties) {
      if (typeof event === 'string' && event !== '') {
        record('track', { event: event, properties: objectOrEmpty(properties) });
      }
    },

    identify: function (id, traits) {
      if (isObject(id)) {
        traits = id;
        id = null;
      }
      id = asId(id);
      if (id) {
        userId = id;
        writeStorage(USER_KEY, id);
      }
      record('identify', { traits: objectOrEmpty(traits) });
    },

    group: function (groupId, traits) {
      groupId = asId(groupId);
      if (groupId) {
        record('group', { groupId: groupId, traits: objectOrEmpty(traits) });
      }
    },

    // Replaces the consent sent with every later event, in `context.consent`.
    consent: function (categories) {
      consent = copyConsent(categories);
    },

    // Forgets the user: a new anonymous id and no user id (for sign-out).
    reset: function () {
      userId = null;
      writeStorage(USER_KEY, null);
      anonymousId = keepAnonymousId(uuid());
    },

    // Sends what is waiting now, without waiting for the batch to fill.
    flush: flush,

    __signal: true
  };

  // The client-side vendors this build was made for; read-only.
  var vendors = (config.vendors || []).slice();
  if (Object.freeze) {
    Object.freeze(vendors);
  }
  Object.defineProperty(api, 'vendors', { value: vendors, enumerable: true });

  window[globalName] = api;

  if (window.addEventListener) {
    window.addEventListener('pagehide', flushWithBeacon);
  }
  if (document.addEventListener) {
    document.addEventListener('visibilitychange', function () {
      if (document.visibilityState === 'hidden') {
        flushWithBeacon();
      }
    });
    if (crossDomains.length) {
      document.addEventListener('mousedown', decorateLink, true);
      document.addEventListener('click', decorateLink, true);
    }
  }

  // Replay the calls queued before the script loaded.
  if (isArray(existing)) {
    for (var i = 0; i < existing.length; i++) {
      var call = existing[i];
      if (isArray(call) && typeof api[call[0]] === 'function') {
        api[call[0]].apply(api, call.slice(1));
      }
    }
  }
})(window, document, __SIGNAL_CONFIG__);
