/* Helpers shared by index.js and bid.js (served as /static/common.js, loaded first).

   Money: the server sends prices as strings with exactly two decimals ("123.66"). They are shown
   as they come, and any arithmetic (the suggested next bid) is done in integer cents, never in
   binary floating point.

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

    // GET a JSON document; rejects with an Error carrying .status on HTTP errors.
    function fetchJSON(url) {
        return fetch(url, { headers: { Accept: 'application/json' }, cache: 'no-store' }).then(function (response) {
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
        fetchJSON: fetchJSON
    };
}());
