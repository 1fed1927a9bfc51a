/* Helpers shared by index.js and bid.js (served as /static/common.js, loaded first).

   Money: the server sends prices as strings with exactly two decimals ("123.66"). They are shown
   as they come, and any arithmetic (the suggested next bid) is done in integer cents, never in
   binary floating point.

   Time: end times (ends_at) are ISO 8601 UTC strings; countdowns are shown in whole seconds
   (formatRemaining) and are computed by the pages against the server's clock where they know it.

   Safety: text from the server (item and bidder names) only ever goes into the page through
   textContent / createTextNode (see el() below), never innerHTML. */
(function () {
    'use strict';

    // The highest price the server accepts: 99999999.99.
    var MAX_CENTS = 9999999999;

    // "123.66" -> 12366; also "123", "123.6". null for anything else (a negative, "1e3", "abc").
    function parseCents(text) {
        if (typeof text !== 'string') {
            return null;
        }
        var m = /^(\d{1,12})(?:\.(\d{1,2}))?$/.exec(text.trim());
        if (!m) {
            return null;
        }
        var frac = m[2] ? (m[2].length === 1 ? m[2] + '0' : m[2]) : '00';
        return parseInt(m[1], 10) * 100 + parseInt(frac, 10);
    }

    // 12366 -> "123.66"
    function formatCents(cents) {
        var whole = Math.floor(cents / 100);
        var rest = cents % 100;
        return String(whole) + '.' + (rest < 10 ? '0' : '') + String(rest);
    }

    // The amount pre-filled in the bid form, in cents, from the current price in cents:
    //   below 100.00          current + 1.00
    //   below 1000.00         current + 5.00
    //   from 1000.00 up       current + 1 % of it, rounded UP to whole units (1234.56 -> +13.00)
    // never above the server's maximum (99999999.99); null when nothing higher is possible.
    function nextBidCents(current) {
        var step;
        if (current < 10000) {
            step = 100;
        } else if (current < 100000) {
            step = 500;
        } else {
            step = Math.floor((current + 9999) / 10000) * 100;
        }
        if (current + step <= MAX_CENTS) {
            return current + step;
        }
        return current < MAX_CENTS ? MAX_CENTS : null;
    }

    // What a person typed in the price field, as the decimal text sent to the server, or null
    // when it is not a plain amount. Accepts "125", "125.5", "125.50", "+125", and a decimal
    // comma ("125,50"). The server does the exact rounding and range checks.
    function normalizePriceInput(text) {
        var t = String(text).trim().replace(/\s+/g, '');
        if (t.indexOf(',') !== -1 && t.indexOf('.') === -1 && /^\+?\d*,\d+$/.test(t)) {
            t = t.replace(',', '.');
        }
        if (!/^\+?(\d+(\.\d*)?|\.\d+)$/.test(t)) {
            return null;
        }
        return t;
    }

    // Creates an element: el('li', {className: 'x', dataset: {seq: '4'}}, ['text', otherNode]).
    // Strings become text nodes: never parsed as HTML.
    function el(tag, props, children) {
        var node = document.createElement(tag);
        if (props) {
            Object.keys(props).forEach(function (key) {
                var value = props[key];
                if (key === 'dataset') {
                    Object.keys(value).forEach(function (d) { node.dataset[d] = value[d]; });
                } else if (key === 'className') {
                    node.className = value;
                } else if (key === 'text') {
                    node.textContent = value;
                } else {
                    node.setAttribute(key, value);
                }
            });
        }
        (children || []).forEach(function (child) {
            if (child === null || child === undefined) {
                return;
            }
            node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
        });
        return node;
    }

    function setText(node, text) {
        node.textContent = text;
    }

    // "2026-11-25T14:00:00.123Z" -> the local time ("14:00:00"), with the date when not today.
    function formatTime(iso) {
        var d = new Date(iso);
        if (isNaN(d.getTime())) {
            return String(iso || '');
        }
        var now = new Date();
        var time = d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
        if (d.toDateString() === now.toDateString()) {
            return time;
        }
        return d.toLocaleDateString([], { year: 'numeric', month: 'short', day: 'numeric' }) + ' ' + time;
    }

    // "2026-12-02T17:00:00.000Z" -> milliseconds since the epoch; null when it is not a time.
    function parseTime(iso) {
        if (typeof iso !== 'string' || iso === '') {
            return null;
        }
        var ms = Date.parse(iso);
        return isNaN(ms) ? null : ms;
    }

    function pad2(n) {
        return (n < 10 ? '0' : '') + String(n);
    }

    // A time left in milliseconds (> 0) as a countdown, counted in whole seconds rounded up (so
    // "0s" is never shown while time is left): "45s", "2m 05s", "1h 02m 05s", "3d 04h 10m".
    function formatRemaining(ms) {
        var total = Math.max(0, Math.ceil(ms / 1000));
        var days = Math.floor(total / 86400);
        var hours = Math.floor((total % 86400) / 3600);
        var minutes = Math.floor((total % 3600) / 60);
        var seconds = total % 60;
        if (days > 0) {
            return days + 'd ' + pad2(hours) + 'h ' + pad2(minutes) + 'm';
        }
        if (hours > 0) {
            return hours + 'h ' + pad2(minutes) + 'm ' + pad2(seconds) + 's';
        }
        if (minutes > 0) {
            return minutes + 'm ' + pad2(seconds) + 's';
        }
        return seconds + 's';
    }

    // A length of time in whole seconds, in words: 30 -> "30 s", 120 -> "2 min", 90 -> "1 min 30 s",
    // 3600 -> "1 h", 5400 -> "1 h 30 min".
    function formatSpan(seconds) {
        var s = Math.max(0, Math.round(seconds));
        var parts = [];
        if (s >= 3600) {
            parts.push(Math.floor(s / 3600) + ' h');
            s %= 3600;
        }
        if (s >= 60) {
            parts.push(Math.floor(s / 60) + ' min');
            s %= 60;
        }
        if (s > 0 || !parts.length) {
            parts.push(s + ' s');
        }
        return parts.join(' ');
    }

    // GET a JSON document; rejects with an Error carrying .status on HTTP errors. `onResponse`
    // (optional) sees the Response first (its headers).
    function fetchJSON(url, onResponse) {
        return fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' }).then(function (response) {
            if (onResponse) {
                onResponse(response);
            }
            if (!response.ok) {
                var error = new Error('HTTP ' + response.status + ' for ' + url);
                error.status = response.status;
                throw error;
            }
            return response.json();
        });
    }

    window.Bidding = {
        MAX_CENTS: MAX_CENTS,
        parseCents: parseCents,
        formatCents: formatCents,
        nextBidCents: nextBidCents,
        normalizePriceInput: normalizePriceInput,
        el: el,
        setText: setText,
        formatTime: formatTime,
        parseTime: parseTime,
        formatRemaining: formatRemaining,
        formatSpan: formatSpan,
        fetchJSON: fetchJSON
    };
}());
