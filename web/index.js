/* The list of auctions, / (web/index.html): reads GET /api/bids page by page and links each
   auction to its live page, /bid/{id}. Item and bidder names are inserted as text only. */
(function () {
    'use strict';

    var B = window.Bidding;
    var el = B.el;
    var PAGE = 100;      // the API's largest page
    var MAX_PAGES = 50;  // at most 5000 auctions on one page

    var list = document.getElementById('auctions');
    var status = document.getElementById('list-status');
    var retry = document.getElementById('retry');
    var filterButtons = Array.prototype.slice.call(document.querySelectorAll('[data-filter]'));

    var auctions = [];
    var filter = 'all';
    var loaded = false;

    function loadAll() {
        var all = [];
        function page(offset, count) {
            return B.fetchJSON('/api/bids?limit=' + PAGE + '&offset=' + offset).then(function (body) {
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
        var badge = el('span', { className: 'badge ' + (closed ? 'badge-closed' : 'badge-open'),
            text: closed ? 'Closed' : 'Open' });
        var link = el('a', { className: 'auction-link', href: '/bid/' + encodeURIComponent(String(a.id)) }, [
            el('span', { className: 'a-name', text: String(a.name) }),
            el('span', { className: 'a-price' }, [
                el('span', { className: 'visually-hidden', text: closed ? 'Final price ' : 'Current price ' }),
                String(a.current_price)
            ]),
            el('span', { className: 'a-detail' }, [badge, ' ', detailText(a)])
        ]);
        return el('li', { dataset: { id: String(a.id), status: String(a.status) } }, [link]);
    }

    function render() {
        while (list.firstChild) {
            list.removeChild(list.firstChild);
        }
        var shown = auctions.filter(function (a) { return filter === 'all' || a.status === filter; });
        shown.forEach(function (a) { list.appendChild(item(a)); });
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
            auctions = all;
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
