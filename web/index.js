/* The list of auctions, / (web/index.html): reads GET /api/bids page by page and links each
   auction to its live page, /bid/{id}. Item and bidder names are inserted as text only.

   Order: open auctions with an end time first, the soonest end first; then open auctions without
   an end; then closed ones; by id within each group (the API's order). Open auctions with an end
   show their time left, updated every second, and the end time; once an end has passed the list
   is read again (once per auction) to show it closed.

   The clock: the time left is counted with this device's clock, corrected by the server's when
   the API's answers carry an HTTP Date header (bidding-server sends the database's time there)
   that disagrees with it by more than 2 s (a Date header has whole seconds only, so a smaller
   difference is noise). The live auction page (bid.js) is exact to the millisecond: it counts
   with the WebSocket's server_time. */
(function () {
    'use strict';

    var B = window.Bidding;
    var el = B.el;
    var PAGE = 100;      // the API's largest page
    var MAX_PAGES = 50;  // at most 5000 auctions on one page
    var TICK_MS = 500;   // how often the times left are refreshed (each changes once a second)
    var RELOAD_AFTER_END_MS = 1500;  // the server closes an auction within 1 s of its end

    var list = document.getElementById('auctions');
    var status = document.getElementById('list-status');
    var retry = document.getElementById('retry');
    var filterButtons = Array.prototype.slice.call(document.querySelectorAll('[data-filter]'));

    var auctions = [];
    var filter = 'all';
    var loaded = false;
    var clockOffset = 0;      // server clock - this device's clock (see above), ms
    var timers = [];          // [{node, end, id}] of the auctions shown with a time left
    var reloadedFor = {};     // id -> true: the list was read again after this auction's end
    var ticking = null;

    function noteDate(response) {
        var header = response.headers.get('Date');
        var t = header ? Date.parse(header) : NaN;
        if (!isNaN(t)) {
            var offset = t + 500 - Date.now();
            clockOffset = Math.abs(offset) > 2000 ? offset : 0;
        }
    }

    function endOf(a) {
        return a.status === 'open' ? B.parseTime(a.ends_at) : null;
    }

    // 0: open with an end, 1: open without, 2: closed.
    function groupOf(a) {
        if (a.status !== 'open') {
            return 2;
        }
        return endOf(a) === null ? 1 : 0;
    }

    function ordered(all) {
        return all.slice().sort(function (x, y) {
            var gx = groupOf(x);
            var gy = groupOf(y);
            if (gx !== gy) {
                return gx - gy;
            }
            if (gx === 0 && endOf(x) !== endOf(y)) {
                return endOf(x) - endOf(y);
            }
            return Number(x.id) - Number(y.id);
        });
    }

    function loadAll() {
        var all = [];
        function page(offset, count) {
            return B.fetchJSON('/api/bids?limit=' + PAGE + '&offset=' + offset, noteDate).then(function (body) {
                var data = Array.isArray(body.data) ? body.data : [];
                all = all.concat(data);
                var total = typeof body.total === 'number' ? body.total : all.length;
                if (data.length && all.length < total && count + 1 < MAX_PAGES) {
                    return page(offset + data.length, count + 1);
                }
                return all;
            });
        }
        return page(0, 0);
    }

    function detailText(a) {
        if (a.status === 'closed') {
            return a.winner ? 'Sold to ' + a.winner : 'Closed without bids';
        }
        return a.leader ? 'Highest bidder: ' + a.leader : 'No bids yet';
    }

    function item(a) {
        var closed = a.status === 'closed';
        var end = endOf(a);
        var badge = el('span', { className: 'badge ' + (closed ? 'badge-closed' : 'badge-open'),
            text: closed ? 'Closed' : 'Open' });
        var ends = null;
        if (end !== null) {
            var left = el('span', { className: 'a-left' });
            ends = el('span', { className: 'a-ends' }, [left, ' · ends ',
                el('time', { datetime: String(a.ends_at), text: B.formatTime(a.ends_at) })]);
            timers.push({ node: left, box: ends, end: end, id: String(a.id) });
        }
        var link = el('a', { className: 'auction-link', href: '/bid/' + encodeURIComponent(String(a.id)) }, [
            el('span', { className: 'a-name', text: String(a.name) }),
            el('span', { className: 'a-price' }, [
                el('span', { className: 'visually-hidden', text: closed ? 'Final price ' : 'Current price ' }),
                String(a.current_price)
            ]),
            el('span', { className: 'a-detail' }, [badge, ' ', detailText(a)]),
            ends
        ]);
        var data = { id: String(a.id), status: String(a.status) };
        if (end !== null) {
            data.endsAt = String(a.ends_at);
        }
        return el('li', { dataset: data }, [link]);
    }

    // Refreshes the times left; reads the list again once an auction's end has passed.
    function updateTimes() {
        var now = Date.now() + clockOffset;
        var reload = false;
        timers.forEach(function (t) {
            var left = t.end - now;
            var text;
            var state;
            if (left <= 0) {
                text = 'Ending…';
                state = 'ending';
                if (left < -RELOAD_AFTER_END_MS && !reloadedFor[t.id]) {
                    reloadedFor[t.id] = true;
                    reload = true;
                }
            } else {
                text = B.formatRemaining(left) + ' left';
                state = left <= 60000 ? 'soon' : 'running';
            }
            if (t.node.textContent !== text) {
                B.setText(t.node, text);
            }
            if (t.box.dataset.state !== state) {
                t.box.dataset.state = state;
            }
        });
        if (reload) {
            load();
        }
    }

    function render() {
        while (list.firstChild) {
            list.removeChild(list.firstChild);
        }
        timers = [];
        var shown = auctions.filter(function (a) { return filter === 'all' || a.status === filter; });
        shown.forEach(function (a) { list.appendChild(item(a)); });
        updateTimes();
        if (timers.length && ticking === null) {
            ticking = setInterval(updateTimes, TICK_MS);
        } else if (!timers.length && ticking !== null) {
            clearInterval(ticking);
            ticking = null;
        }
        if (!auctions.length) {
            B.setText(status, 'There are no auctions yet.');
        } else if (!shown.length) {
            B.setText(status, filter === 'open' ? 'No open auctions right now.' : 'No closed auctions.');
        } else {
            var open = auctions.filter(function (a) { return a.status === 'open'; }).length;
            B.setText(status, auctions.length + (auctions.length === 1 ? ' auction' : ' auctions') + ', '
                + open + ' open.');
        }
    }

    function load() {
        retry.hidden = true;
        if (!loaded) {
            B.setText(status, 'Loading the auctions…');
        }
        loadAll().then(function (all) {
            auctions = ordered(all);
            loaded = true;
            render();
        }).catch(function () {
            B.setText(status, 'Could not load the auctions. Check your connection and try again.');
            retry.hidden = false;
        });
    }

    filterButtons.forEach(function (button) {
        button.addEventListener('click', function () {
            filter = button.dataset.filter;
            filterButtons.forEach(function (b) {
                b.setAttribute('aria-pressed', b === button ? 'true' : 'false');
            });
            if (loaded) {
                render();
            }
        });
    });
    retry.addEventListener('click', load);

    // Coming back to the tab (or back from an auction page): show fresh prices.
    document.addEventListener('visibilitychange', function () {
        if (document.visibilityState === 'visible' && loaded) {
            load();
        }
    });
    window.addEventListener('pageshow', function (event) {
        if (event.persisted) {
            load();
        }
    });

    load();
}());
