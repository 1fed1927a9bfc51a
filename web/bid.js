/* The auction page, /bid/{id} (web/bid.html): follows one auction live over the WebSocket of
   docs/protocol.md and places bids.

   - Connects to ws(s)://<this host>/ws/bid/{id}. The first message, initial_state, replaces the
     history (newest first). After a drop it reconnects with exponential backoff (0.5 s doubling up
     to 10 s, with jitter) and ?since=<last seq seen>: that initial_state carries only the missed
     entries, oldest first, which are appended, so the history stays complete.
   - new_bid: a new price, shown at once and briefly highlighted (class "flash").
   - A bid is {"type":"bid","name":..,"price":"<decimal text>","ref":..}; its one reply,
     bid_accepted or error, is matched by ref. Errors are explained in plain words next to the form.
   - ping is answered with {"type":"pong"}.
   - Timed auctions (docs/timed-auctions.md): when the auction has an end (ends_at), a countdown
     shows the time left, counted with the SERVER's clock: initial_state and every ping carry
     server_time, and the page keeps offset = server_time - its own clock at receipt, so the
     countdown is right on a device whose clock is wrong. A new_bid carrying a later ends_at (a soft
     close extension) moves the countdown at once and says "Extended". At 0 the page shows
     "Ending…" and keeps the form usable: the server decides (a late bid gets error bid_closed),
     and its bid_closed message ends it ("Ended", the winner, the final price). The countdown is a
     role="timer" element, not a live region: only extensions and the end are announced.
   - The minimum next bid (min_price from initial_state or a price_too_low error; a new_bid's
     price + min_increment) is
     shown under the form and as the price field's placeholder; the pre-filled amount is never
     below it.
   - Close 4003 / bid_closed: the auction is over; shows its winner and disables the form.
     Close 4004: no such auction. Close 4001: the page's ?token= is invalid (or the server wants
     one). Any other close (1012 server shutdown, 1006 network lost, ...): reconnect.
   - A signed identity: /bid/{id}?token=TOKEN (from `bidding-server token --bidder NAME`) is passed
     on to the WebSocket; the server then bids in the token's name, which the form shows.

   Names from the server are only ever inserted as text (textContent / text nodes), never as HTML.
   Prices stay the server's two-decimal strings; the suggested next bid is computed in integer
   cents (common.js). */
(function () {
    'use strict';

    var B = window.Bidding;
    var el = B.el;

    var NAME_KEY = 'bidding.name';
    var BACKOFF_MIN_MS = 500;
    var BACKOFF_MAX_MS = 10000;
    var CONNECT_TIMEOUT_MS = 10000;   // no initial_state by then: try again
    var SILENCE_MIN_MS = 150000;      // no message at all (not even a ping) for this long: reconnect
    var FLASH_MS = 1600;
    var MAX_HISTORY_ROWS = 1000;      // a page left open for days keeps only the newest rows
    var EXTENDED_NOTICE_MS = 20000;   // how long "Extended" stays after an extension
    var ENDED_SLACK_MS = 1000;        // a close this close to (or after) ends_at is "Ended", not "Closed"
    var DEFAULT_INCREMENT = '0.01';

    function $(id) {
        return document.getElementById(id);
    }

    var ui = {
        title: $('item-name'),
        status: $('auction-status'),
        conn: $('conn'),
        notFound: $('not-found'),
        closedBanner: $('closed-banner'),
        closedText: $('closed-text'),
        priceCard: $('price-card'),
        priceLabel: $('price-label'),
        price: $('current-price'),
        leader: $('leader'),
        form: $('bid-form'),
        fieldset: $('bid-fieldset'),
        name: $('bidder-name'),
        amount: $('bid-price'),
        submit: $('bid-submit'),
        hint: $('price-hint'),
        message: $('form-message'),
        history: $('history'),
        historyEmpty: $('history-empty'),
        historySection: $('history').closest('section'),
        announcer: $('announcer'),
        timing: $('timing'),
        timeLeftLabel: $('time-left-label'),
        countdown: $('countdown'),
        endsAt: $('ends-at'),
        extended: $('extended'),
        softClose: $('soft-close')
    };

    var match = /^\/bid\/([1-9][0-9]{0,18})\/?$/.exec(location.pathname);
    var token = new URLSearchParams(location.search).get('token');

    var state = {
        id: match ? Number(match[1]) : null,
        idText: match ? match[1] : null,
        ws: null,
        live: false,              // initial_state received on the current socket
        everLive: false,          // some initial_state was applied: reconnect with ?since=
        lastSeq: 0,
        currentPrice: null,       // "123.66"
        currentCents: null,       // 12366
        newest: null,             // the newest history entry {seq, bidder, price}
        seqs: new Set(),          // seqs in the history list
        mySeqs: new Set(),        // seqs of bids accepted from this page
        pending: new Map(),       // ref -> {price, name}
        refCounter: 0,
        priceEdited: false,
        minPrice: null,           // "123.68": the smallest acceptable next bid (server's min_price)
        minCents: null,
        increment: null,          // "1.00": the auction's min_increment
        endsAt: null,             // ms since the epoch (server's ends_at), null: no end
        endsAtIso: null,
        clockOffset: 0,           // server's clock - this device's clock, in ms (from server_time)
        timingTimer: null,
        extendedTimer: null,
        endingAnnounced: false,
        signedName: null,
        closed: false,
        notFound: false,
        unauthorized: false,
        attempt: 0,
        reconnectTimer: null,
        countdownTimer: null,
        connectTimer: null,
        lastMessageAt: 0,
        lastPingAt: 0,
        maxPingGap: 0,
        quickReconnect: false,
        urls: [],                 // every WebSocket URL opened, and every close code (read by the tests)
        closeCodes: []
    };

    // ------------------------------------------------------------------ small UI helpers

    function setConn(kind, text) {
        ui.conn.dataset.state = kind;
        B.setText(ui.conn, text);
    }

    function setMessage(kind, text) {
        ui.message.dataset.kind = kind;
        B.setText(ui.message, text);
    }

    function clearMessage() {
        delete ui.message.dataset.kind;
        B.setText(ui.message, '');
    }

    function announce(text) {
        B.setText(ui.announcer, text);
    }

    function flash(node) {
        node.classList.remove('flash');
        void node.offsetWidth; // restart the animation
        node.classList.add('flash');
        clearTimeout(node.flashTimer);
        node.flashTimer = setTimeout(function () { node.classList.remove('flash'); }, FLASH_MS);
    }

    function setTitle(name) {
        B.setText(ui.title, name);
        document.title = name + ' — Auction';
    }

    function setStatusBadge(status) {
        ui.status.hidden = false;
        ui.status.className = 'badge ' + (status === 'closed' ? 'badge-closed' : 'badge-open');
        B.setText(ui.status, status === 'closed' ? 'Closed' : 'Open');
    }

    function updateSubmitState() {
        var busy = state.pending.size > 0;
        ui.submit.disabled = state.closed || state.notFound || state.unauthorized || busy;
        ui.form.setAttribute('aria-busy', busy ? 'true' : 'false');
        B.setText(ui.submit, busy ? 'Sending…' : 'Place bid');
    }

    // ------------------------------------------------------------------ price and history

    function setCurrentPrice(price, highlight) {
        var cents = B.parseCents(price);
        if (cents === null) {
            return;
        }
        state.currentPrice = price;
        state.currentCents = cents;
        B.setText(ui.price, price);
        if (highlight) {
            flash(ui.price);
        }
        updateLeader();
        suggestPrice(false);
    }

    function updateLeader() {
        if (state.closed) {
            return;
        }
        if (state.newest) {
            var mine = state.mySeqs.has(state.newest.seq);
            B.setText(ui.leader, mine ? 'You are the highest bidder (' + state.newest.bidder + ')'
                : 'Highest bidder: ' + state.newest.bidder);
        } else {
            B.setText(ui.leader, 'Starting price — no bids yet');
        }
    }

    // Puts the next sensible amount in the price field, unless the person typed their own
    // (force: replace it anyway, e.g. after a successful bid).
    function suggestPrice(force) {
        if (state.currentCents === null || state.closed) {
            return;
        }
        if (state.priceEdited && !force) {
            return;
        }
        var next = atLeastMin(B.nextBidCents(state.currentCents));
        ui.amount.value = next === null ? '' : B.formatCents(next);
        state.priceEdited = false;
        ui.amount.removeAttribute('aria-invalid');
    }

    // A suggested amount in cents, raised to the minimum next bid when it is below it; null when no
    // acceptable amount exists.
    function atLeastMin(cents) {
        if (state.minCents === null) {
            return cents;
        }
        if (state.minCents > B.MAX_CENTS) {
            return null;
        }
        return cents === null || cents < state.minCents ? state.minCents : cents;
    }

    // ------------------------------------------------------------------ the minimum next bid

    // min_price (and min_increment) from the server. `raiseOnly`: keep a higher minimum already
    // known (a price_too_low reply may be older than a new_bid already shown).
    function setMinPrice(minPrice, increment, raiseOnly) {
        var cents = B.parseCents(typeof minPrice === 'string' ? minPrice : '');
        if (typeof increment === 'string' && B.parseCents(increment) !== null) {
            state.increment = B.formatCents(B.parseCents(increment));
        }
        if (cents === null) {
            return false;
        }
        if (raiseOnly && state.minCents !== null && state.minCents >= cents) {
            return false;
        }
        state.minCents = cents;
        state.minPrice = B.formatCents(cents);
        ui.amount.setAttribute('placeholder', state.minPrice);
        // Informational only: the field is a text field (decimal commas are accepted) and the
        // server decides.
        ui.amount.setAttribute('min', state.minPrice);
        ui.amount.setAttribute('step', state.increment || DEFAULT_INCREMENT);
        updateHint();
        return true;
    }

    function updateHint() {
        if (state.closed) {
            return;
        }
        var text = state.signedName ? 'You bid as ' + state.signedName + ' (signed in by your link). ' : '';
        if (state.minPrice !== null) {
            text += 'Minimum bid: ' + state.minPrice;
            if (state.increment && state.increment !== DEFAULT_INCREMENT) {
                text += ' (bids go up by at least ' + state.increment + ')';
            }
        } else {
            text += 'Bid more than the current price.';
        }
        B.setText(ui.hint, text);
    }

    // ------------------------------------------------------------------ end time and countdown

    function serverNow() {
        return Date.now() + state.clockOffset;
    }

    // server_time of initial_state or ping: the server's clock when it sent the message.
    function noteServerTime(iso) {
        var t = B.parseTime(iso);
        if (t === null) {
            return;
        }
        state.clockOffset = t - Date.now();
        if (state.endsAt !== null) {
            tick();
        }
    }

    // The soft-close rule (extend_window, extend_by: seconds), shown when both are set.
    function setSoftClose(windowSeconds, bySeconds) {
        if (windowSeconds === undefined && bySeconds === undefined) {
            return; // not said (an older server): keep what is shown
        }
        if (typeof windowSeconds === 'number' && typeof bySeconds === 'number' && windowSeconds > 0 && bySeconds > 0) {
            B.setText(ui.softClose, 'Soft close: a bid in the last ' + B.formatSpan(windowSeconds)
                + ' extends the end to ' + B.formatSpan(bySeconds) + ' after that bid.');
            ui.softClose.hidden = false;
        } else {
            ui.softClose.hidden = true;
        }
    }

    function showEndsAt(prefix) {
        while (ui.endsAt.firstChild) {
            ui.endsAt.removeChild(ui.endsAt.firstChild);
        }
        if (state.endsAtIso === null) {
            return;
        }
        ui.endsAt.appendChild(document.createTextNode(prefix + ' '));
        ui.endsAt.appendChild(el('time', { datetime: state.endsAtIso, text: B.formatTime(state.endsAtIso) }));
    }

    // ends_at from initial_state.bid, a new_bid, or the HTTP auction object (undefined: an older
    // server that does not say; null: no end). Returns true when the end moved later while the page
    // followed the auction (`live`): an extension.
    function setEndsAt(iso, live) {
        if (iso === undefined) {
            return false;
        }
        var ms = iso === null ? null : B.parseTime(iso);
        if (iso !== null && ms === null) {
            return false;
        }
        var previous = state.endsAt;
        state.endsAt = ms;
        state.endsAtIso = ms === null ? null : iso;
        if (ms === null) {
            clearTimeout(state.timingTimer);
            state.timingTimer = null;
            ui.timing.hidden = true;
            return false;
        }
        ui.timing.hidden = false;
        if (!state.closed) {
            showEndsAt('Ends at');
        }
        var extended = live && previous !== null && ms > previous;
        if (extended && !state.closed) {
            B.setText(ui.extended, 'Extended — a late bid moved the end to ' + B.formatTime(iso) + '.');
            ui.extended.hidden = false;
            clearTimeout(state.extendedTimer);
            state.extendedTimer = setTimeout(function () { ui.extended.hidden = true; }, EXTENDED_NOTICE_MS);
        }
        if (ms > serverNow()) {
            state.endingAnnounced = false;
        }
        tick();
        return extended;
    }

    // Shows the time left, then sleeps until the shown second changes.
    function tick() {
        clearTimeout(state.timingTimer);
        state.timingTimer = null;
        if (state.endsAt === null || state.closed) {
            return;
        }
        var left = state.endsAt - serverNow();
        if (left <= 0) {
            // The server closes the auction (within a second): until its bid_closed, bids still go to
            // it and it answers them.
            ui.countdown.dataset.state = 'ending';
            B.setText(ui.countdown, 'Ending…');
            if (!state.endingAnnounced) {
                state.endingAnnounced = true;
                announce('Time is up: the auction is ending.');
            }
            return;
        }
        ui.countdown.dataset.state = left <= 60000 ? 'soon' : 'running';
        B.setText(ui.countdown, B.formatRemaining(left) + ' left');
        state.timingTimer = setTimeout(tick, (left % 1000 || 1000) + 10);
    }

    // The auction closed: the countdown says how.
    function showTimingClosed() {
        clearTimeout(state.timingTimer);
        state.timingTimer = null;
        clearTimeout(state.extendedTimer);
        ui.extended.hidden = true;
        ui.softClose.hidden = true;
        if (state.endsAt === null) {
            return false;
        }
        var ended = state.endsAt <= serverNow() + ENDED_SLACK_MS;
        ui.timing.hidden = false;
        B.setText(ui.timeLeftLabel, ended ? 'Auction ended' : 'Auction closed');
        ui.countdown.dataset.state = 'ended';
        B.setText(ui.countdown, ended ? 'Ended' : 'Closed');
        showEndsAt(ended ? 'Ended at' : 'It was due to end at');
        return ended;
    }

    function historyItem(entry) {
        var time = el('time', { className: 'h-time', datetime: String(entry.added_at || '') },
            [el('span', { className: 'visually-hidden', text: 'at ' }), B.formatTime(entry.added_at)]);
        var bidder = el('span', { className: 'h-bidder' },
            [el('span', { className: 'visually-hidden', text: 'by ' }), String(entry.bidder)]);
        var li = el('li', { dataset: { seq: String(entry.seq) } },
            [el('span', { className: 'h-price', text: String(entry.price) }), bidder, time]);
        if (state.mySeqs.has(entry.seq)) {
            markMine(li);
        }
        return li;
    }

    function markMine(li) {
        if (li.classList.contains('mine')) {
            return;
        }
        li.classList.add('mine');
        li.querySelector('.h-bidder').appendChild(el('span', { className: 'mine-tag', text: '(your bid)' }));
    }

    // Adds one history entry in its place (the list is newest first, by seq). Returns its <li>,
    // or null when that seq is already shown.
    function addEntry(entry, highlight) {
        if (typeof entry.seq !== 'number' || state.seqs.has(entry.seq)) {
            return null;
        }
        state.seqs.add(entry.seq);
        var li = historyItem(entry);
        var before = ui.history.firstElementChild;
        while (before && Number(before.dataset.seq) > entry.seq) {
            before = before.nextElementSibling;
        }
        ui.history.insertBefore(li, before);
        if (ui.history.childElementCount > MAX_HISTORY_ROWS) {
            ui.history.removeChild(ui.history.lastElementChild);
        }
        if (!state.newest || entry.seq > state.newest.seq) {
            state.newest = { seq: entry.seq, bidder: String(entry.bidder), price: String(entry.price) };
        }
        ui.historyEmpty.hidden = true;
        if (highlight) {
            flash(li);
        }
        return li;
    }

    function clearHistory() {
        while (ui.history.firstChild) {
            ui.history.removeChild(ui.history.firstChild);
        }
        state.seqs.clear();
        state.newest = null;
        ui.historyEmpty.hidden = false;
    }

    // Reads history over HTTP (oldest first, after `since`), page by page, and adds it.
    // `until`: stop once a seq >= until was read (the rest came over the WebSocket).
    function loadHistoryOverHttp(since, until) {
        var pages = 0;
        function page(after) {
            var url = '/api/bids/' + state.idText + '/history?since=' + after + '&limit=1000';
            return B.fetchJSON(url).then(function (body) {
                var data = Array.isArray(body.data) ? body.data : [];
                var reached = false;
                data.forEach(function (entry) {
                    if (until !== undefined && entry.seq >= until) {
                        reached = true;
                        return;
                    }
                    addEntry(entry, false);
                });
                pages += 1;
                if (body.has_more && data.length && !reached && pages < 20) {
                    return page(data[data.length - 1].seq);
                }
                return null;
            });
        }
        return page(since);
    }

    // ------------------------------------------------------------------ messages from the server

    function onInitialState(msg) {
        var bid = msg.bid || {};
        clearTimeout(state.connectTimer);
        noteServerTime(msg.server_time);
        state.live = true;
        state.attempt = 0;
        state.quickReconnect = false;
        if (typeof bid.name === 'string') {
            setTitle(bid.name);
        }
        setStatusBadge(bid.status);
        var data = Array.isArray(msg.data) ? msg.data : [];
        var resumed = Object.prototype.hasOwnProperty.call(msg, 'since');
        var added = 0;
        if (resumed) {
            // After a reconnect: what this page missed, oldest first: append.
            var previousLast = state.lastSeq;
            data.forEach(function (entry) {
                if (addEntry(entry, true)) {
                    added += 1;
                }
            });
            if (msg.truncated && data.length) {
                // More was missed than the server sends: fetch the gap over HTTP.
                loadHistoryOverHttp(previousLast, data[0].seq).catch(function () { /* best effort */ });
            }
        } else {
            // A first connection: the whole (recent) history, newest first: replace.
            clearHistory();
            data.forEach(function (entry) { addEntry(entry, false); });
        }
        if (typeof bid.last_seq === 'number' && bid.last_seq > state.lastSeq) {
            state.lastSeq = bid.last_seq;
        }
        if (state.newest && state.newest.seq > state.lastSeq) {
            state.lastSeq = state.newest.seq;
        }
        setMinPrice(bid.min_price, bid.min_increment, false);
        setSoftClose(bid.extend_window, bid.extend_by);
        var extended = setEndsAt(bid.ends_at, resumed);
        setCurrentPrice(bid.current_price, resumed && added > 0);
        if (resumed && added > 0) {
            announce((added === 1 ? 'While reconnecting, 1 new bid: ' + state.currentPrice
                : 'While reconnecting, ' + added + ' new bids; the price is now ' + state.currentPrice)
                + (extended ? '. ' + extendedWords() : ''));
        } else if (extended) {
            announce(extendedWords());
        }
        state.everLive = true;
        setConn('live', 'Live — new bids appear here as they happen');
        if (bid.status === 'closed') {
            onClosedAtConnect();
        }
        updateSubmitState();
    }

    function onNewBid(msg) {
        if (msg.bid_id !== undefined && msg.bid_id !== state.id) {
            return;
        }
        var li = addEntry(msg, true);
        if (!li) {
            return;
        }
        var extended = false;
        if (msg.seq > state.lastSeq) {
            state.lastSeq = msg.seq;
            // new_bid carries the increment, not the sum (every byte goes to every client).
            var price = B.parseCents(String(msg.price));
            // (absent: an auction without an end at the default increment, whose new_bid is as of old)
            var step = B.parseCents(typeof msg.min_increment === 'string' ? msg.min_increment
                : (state.increment || DEFAULT_INCREMENT));
            if (price !== null && step !== null) {
                setMinPrice(B.formatCents(price + step), msg.min_increment, false);
            }
            extended = setEndsAt(msg.ends_at, true);
            setCurrentPrice(msg.price, true);
        }
        announce('New bid: ' + msg.price + ' by ' + msg.bidder + (extended ? '. ' + extendedWords() : ''));
    }

    function extendedWords() {
        return 'The auction was extended: it now ends at ' + B.formatTime(state.endsAtIso) + '.';
    }

    function onBidAccepted(msg) {
        var sent = state.pending.get(msg.ref);
        state.pending.delete(msg.ref);
        if (typeof msg.seq === 'number') {
            state.mySeqs.add(msg.seq);
            var li = ui.history.querySelector('li[data-seq="' + msg.seq + '"]');
            if (li) {
                markMine(li);
                flash(li);
            }
        }
        if (sent || msg.ref === null) {
            if (state.lastSeq > msg.seq) {
                setMessage('ok', 'Your bid of ' + msg.price + ' was accepted, but someone has bid more since.');
            } else {
                setMessage('ok', 'Your bid of ' + msg.price + ' was accepted — you are the highest bidder.');
            }
            suggestPrice(true);
        }
        updateLeader();
        updateSubmitState();
    }

    // The server's error codes, in words a person understands.
    function explainError(msg) {
        switch (msg.code) {
        case 'price_too_low':
            // With the default increment (0.01) "more than the current price" is the rule; with a
            // larger one, the reply's min_price says how much.
            var min = B.parseCents(typeof msg.min_price === 'string' ? msg.min_price : '');
            var current = B.parseCents(typeof msg.current_price === 'string' ? msg.current_price : '');
            var atLeast = min !== null && (current === null || min !== current + 1)
                ? 'bid at least ' + B.formatCents(min) : null;
            if (current !== null) {
                if (state.newest && state.mySeqs.has(state.newest.seq) && state.newest.price === msg.current_price) {
                    return 'You are already the highest bidder at ' + msg.current_price
                        + ' — to raise it, ' + (atLeast || 'bid more than that') + '.';
                }
                return 'Someone bid ' + msg.current_price + ' already — ' + (atLeast || 'bid more than that') + '.';
            }
            if (min !== null) {
                return 'That is too low — ' + (atLeast || 'bid at least ' + B.formatCents(min)) + '.';
            }
            return 'Someone has bid that much already — bid more than the current price.';
        case 'bid_closed':
            return 'This auction has closed — bids are no longer accepted.';
        case 'rate_limited':
            return 'You are bidding too fast — wait a moment, then try again.';
        case 'invalid_price':
            return 'That amount is not valid — enter a price above 0 and at most 99999999.99, like 125.00.';
        case 'invalid_name':
            return 'Please enter your name (at most 255 characters, no special control characters).';
        case 'unavailable':
            return 'The server could not take your bid just now (nothing was saved) — please try again in a moment.';
        case 'overloaded':
            return 'The auction is very busy right now (your bid was not saved) — please try again in a moment.';
        case 'in_doubt':
            return 'We could not confirm your bid yet. If it was saved, it will appear in the list in a moment.';
        case 'invalid_json':
        case 'invalid_message':
        case 'unsupported':
            return 'Your bid could not be sent properly — reload the page and try again.';
        default:
            return 'Your bid was not accepted' + (msg.message ? ': ' + msg.message : '.');
        }
    }

    function onError(msg) {
        if (msg.ref !== null && msg.ref !== undefined) {
            state.pending.delete(msg.ref);
        } else if (state.pending.size === 1 && (msg.code === 'invalid_json' || msg.code === 'invalid_message')) {
            state.pending.clear();
        }
        setMessage('error', explainError(msg));
        if (msg.code === 'price_too_low') {
            setMinPrice(msg.min_price, undefined, true);
            var cents = B.parseCents(msg.current_price);
            if (cents !== null || state.minCents !== null) {
                var base = state.currentCents !== null && (cents === null || state.currentCents > cents) ? state.currentCents : cents;
                var next = atLeastMin(base === null ? null : B.nextBidCents(base));
                if (next !== null) {
                    ui.amount.value = B.formatCents(next);
                    state.priceEdited = false;
                }
            }
        } else if (msg.code === 'invalid_price') {
            ui.amount.setAttribute('aria-invalid', 'true');
        } else if (msg.code === 'invalid_name') {
            ui.name.setAttribute('aria-invalid', 'true');
        }
        updateSubmitState();
    }

    function onBidClosed(msg) {
        showClosed(msg.winner, msg.final_price);
    }

    function handleMessage(raw) {
        var msg;
        try {
            msg = JSON.parse(raw);
        } catch (e) {
            return;
        }
        if (!msg || typeof msg !== 'object') {
            return;
        }
        switch (msg.type) {
        case 'initial_state':
            onInitialState(msg);
            break;
        case 'new_bid':
            onNewBid(msg);
            break;
        case 'bid_accepted':
            onBidAccepted(msg);
            break;
        case 'error':
            onError(msg);
            break;
        case 'ping':
            send({ type: 'pong' });
            notePing();
            noteServerTime(msg.server_time);
            break;
        case 'bid_closed':
            onBidClosed(msg);
            break;
        case 'server_shutdown':
            state.quickReconnect = true;
            setConn('reconnecting', 'The server is restarting — reconnecting…');
            break;
        default:
            break;
        }
    }

    // ------------------------------------------------------------------ closed / not found

    function showClosed(winner, finalPrice) {
        state.closed = true;
        stopReconnecting();
        setStatusBadge('closed');
        if (typeof finalPrice === 'string' && B.parseCents(finalPrice) !== null) {
            state.currentPrice = finalPrice;
            B.setText(ui.price, finalPrice);
        }
        B.setText(ui.priceLabel, 'Final price');
        var ended = showTimingClosed();
        var text;
        if (typeof winner === 'string' && winner !== '') {
            text = (ended ? 'Ended — sold to ' : 'Sold to ') + winner + ' for ' + (state.currentPrice || finalPrice);
            B.setText(ui.leader, 'Winner: ' + winner);
        } else if (winner === null) {
            text = ended ? 'Ended without bids' : 'Closed without bids';
            B.setText(ui.leader, 'Nobody bid on this item.');
        } else {
            text = ended ? 'This auction has ended.' : 'This auction has closed.';
            B.setText(ui.leader, '');
        }
        B.setText(ui.closedText, text);
        ui.closedBanner.hidden = false;
        ui.fieldset.disabled = true;
        ui.amount.value = '';
        ui.amount.removeAttribute('placeholder');
        B.setText(ui.hint, 'This auction has closed: bids are no longer accepted.');
        if (state.pending.size) {
            state.pending.clear();
            setMessage('error', 'This auction closed before your bid was decided.');
        }
        setConn('closed', 'Auction closed');
        announce(text);
        updateSubmitState();
    }

    // The server said 4003 without a bid_closed first (typically: the page was opened on a closed
    // auction): read the auction and its history over HTTP.
    function onClosedAtConnect() {
        state.closed = true;
        stopReconnecting();
        setConn('closed', 'Auction closed');
        ui.fieldset.disabled = true;
        updateSubmitState();
        var first = !state.everLive;
        B.fetchJSON('/api/bids/' + state.idText).then(function (auction) {
            if (typeof auction.name === 'string') {
                setTitle(auction.name);
            }
            if (typeof auction.last_seq === 'number' && auction.last_seq > state.lastSeq) {
                state.lastSeq = auction.last_seq;
            }
            setEndsAt(auction.ends_at, false);
            showClosed(auction.winner === undefined ? undefined : auction.winner, auction.current_price);
            if (first) {
                clearHistory();
            }
            return loadHistoryOverHttp(first ? 0 : state.lastSeq);
        }).catch(function () {
            // The WebSocket said the auction exists and is closed: say so, without the details.
            if (!state.closed || ui.closedBanner.hidden) {
                showClosed(undefined, undefined);
            }
        });
    }

    function showNotFound() {
        state.notFound = true;
        stopReconnecting();
        setTitle('No such auction');
        ui.status.hidden = true;
        ui.notFound.hidden = false;
        ui.priceCard.hidden = true;
        ui.form.hidden = true;
        ui.historySection.hidden = true;
        ui.closedBanner.hidden = true;
        setConn('closed', 'Not available');
        updateSubmitState();
    }

    function showUnauthorized() {
        state.unauthorized = true;
        stopReconnecting();
        ui.fieldset.disabled = true;
        setConn('closed', 'Not authorized');
        setMessage('error', token
            ? 'This link\'s sign-in token is not valid (it may have expired) — ask for a new link.'
            : 'This server only lets signed-in bidders follow auctions — open the link you were given.');
        ui.historySection.hidden = true;
        ui.priceCard.hidden = true;
        updateSubmitState();
        // The name and price are public (HTTP API): show them, without the live part.
        B.fetchJSON('/api/bids/' + state.idText).then(function (auction) {
            if (typeof auction.name === 'string') {
                setTitle(auction.name);
            }
            setStatusBadge(auction.status);
            if (B.parseCents(auction.current_price) !== null) {
                B.setText(ui.price, auction.current_price);
                ui.priceCard.hidden = false;
            }
            if (auction.status === 'open') {
                // Counted with this device's clock: no server_time without the WebSocket.
                setSoftClose(auction.extend_window, auction.extend_by);
                setEndsAt(auction.ends_at, false);
            }
        }).catch(function () { /* the message above says enough */ });
    }

    // The bidder name inside a ?token= (a JWT's "sub"), shown in the form; the server checks the
    // token, this is only for display.
    function tokenName(jwt) {
        try {
            var part = jwt.split('.')[1].replace(/-/g, '+').replace(/_/g, '/');
            while (part.length % 4) {
                part += '=';
            }
            var bytes = Uint8Array.from(atob(part), function (c) { return c.charCodeAt(0); });
            var claims = JSON.parse(new TextDecoder().decode(bytes));
            return typeof claims.sub === 'string' ? claims.sub : null;
        } catch (e) {
            return null;
        }
    }

    // ------------------------------------------------------------------ the connection

    function socketUrl() {
        var scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
        var url = scheme + '//' + location.host + '/ws/bid/' + state.idText;
        var query = [];
        if (state.everLive) {
            query.push('since=' + state.lastSeq);
        }
        if (token) {
            query.push('token=' + encodeURIComponent(token));
        }
        return query.length ? url + '?' + query.join('&') : url;
    }

    function send(obj) {
        if (state.ws && state.ws.readyState === WebSocket.OPEN) {
            state.ws.send(JSON.stringify(obj));
            return true;
        }
        return false;
    }

    function notePing() {
        var now = Date.now();
        if (state.lastPingAt) {
            state.maxPingGap = Math.max(state.maxPingGap, now - state.lastPingAt);
        }
        state.lastPingAt = now;
    }

    function connect() {
        if (state.closed || state.notFound || state.unauthorized) {
            return;
        }
        clearTimeout(state.reconnectTimer);
        clearInterval(state.countdownTimer);
        state.reconnectTimer = null;
        state.live = false;
        state.lastPingAt = 0;
        setConn(state.everLive ? 'reconnecting' : 'connecting', state.everLive ? 'Reconnecting…' : 'Connecting…');
        var ws;
        var url = socketUrl();
        state.urls.push(url);
        try {
            ws = new WebSocket(url);
        } catch (e) {
            scheduleReconnect();
            return;
        }
        state.ws = ws;
        state.lastMessageAt = Date.now();
        state.connectTimer = setTimeout(function () {
            if (state.ws === ws && !state.live) {
                abandon(ws);
            }
        }, CONNECT_TIMEOUT_MS);
        ws.onmessage = function (event) {
            if (state.ws !== ws) {
                return;
            }
            state.lastMessageAt = Date.now();
            if (typeof event.data === 'string') {
                handleMessage(event.data);
            }
        };
        ws.onclose = function (event) {
            if (state.ws !== ws) {
                return;
            }
            onSocketClosed(event.code);
        };
    }

    // Gives up on a socket that does not answer (no initial_state, or silent for too long).
    function abandon(ws) {
        ws.onmessage = null;
        ws.onclose = null;
        try {
            ws.close();
        } catch (e) { /* already closing */ }
        onSocketClosed(1006);
    }

    function onSocketClosed(code) {
        state.closeCodes.push(code);
        clearTimeout(state.connectTimer);
        state.ws = null;
        state.live = false;
        if (state.pending.size) {
            var prices = [];
            state.pending.forEach(function (p) { prices.push(p.price); });
            state.pending.clear();
            if (code !== 4003 && code !== 4004 && code !== 4001) {
                setMessage('error', 'The connection dropped before the server answered. If your bid of '
                    + prices.join(', ') + ' went through, it will appear in the list once the page reconnects.');
            }
        }
        updateSubmitState();
        if (code === 4004) {
            showNotFound();
        } else if (code === 4001) {
            showUnauthorized();
        } else if (code === 4003) {
            if (!state.closed || ui.closedBanner.hidden) {
                onClosedAtConnect();
            }
        } else if (!state.closed) {
            scheduleReconnect();
        }
    }

    // Exponential backoff: 0.5 s, 1 s, 2 s, 4 s, 8 s, then 10 s, each times a random 0.75..1.25,
    // kept within 0.5 s .. 10 s.
    function reconnectDelay() {
        var base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * Math.pow(2, state.attempt));
        var delay = base * (0.75 + Math.random() * 0.5);
        return Math.round(Math.max(BACKOFF_MIN_MS, Math.min(BACKOFF_MAX_MS, delay)));
    }

    function scheduleReconnect() {
        if (state.closed || state.notFound || state.unauthorized || state.reconnectTimer) {
            return;
        }
        var delay = state.quickReconnect ? BACKOFF_MIN_MS + Math.round(Math.random() * 250) : reconnectDelay();
        state.quickReconnect = false;
        state.attempt += 1;
        var due = Date.now() + delay;
        var showCountdown = function () {
            var seconds = Math.max(1, Math.ceil((due - Date.now()) / 1000));
            setConn('offline', 'Connection lost — reconnecting in ' + seconds + ' s…');
        };
        showCountdown();
        clearInterval(state.countdownTimer);
        state.countdownTimer = setInterval(showCountdown, 1000);
        state.reconnectTimer = setTimeout(connect, delay);
    }

    function stopReconnecting() {
        clearTimeout(state.reconnectTimer);
        clearInterval(state.countdownTimer);
        clearTimeout(state.connectTimer);
        state.reconnectTimer = null;
    }

    // A connection that stays silent (no ping for much longer than the heartbeat) is dead even if
    // the browser has not noticed (a network that vanished): drop it and reconnect.
    function watchdog() {
        if (!state.ws || !state.live) {
            return;
        }
        var limit = Math.max(SILENCE_MIN_MS, state.maxPingGap * 2.5);
        if (Date.now() - state.lastMessageAt > limit) {
            abandon(state.ws);
        }
    }

    // ------------------------------------------------------------------ the form

    function loadName() {
        try {
            var saved = window.localStorage.getItem(NAME_KEY);
            if (saved) {
                ui.name.value = saved;
            }
        } catch (e) { /* storage disabled */ }
    }

    function saveName(name) {
        try {
            window.localStorage.setItem(NAME_KEY, name);
        } catch (e) { /* storage disabled or full */ }
    }

    function onSubmit(event) {
        event.preventDefault();
        if (state.closed || state.notFound || state.unauthorized) {
            return;
        }
        ui.name.removeAttribute('aria-invalid');
        ui.amount.removeAttribute('aria-invalid');
        var name = ui.name.value.trim();
        if (!name) {
            ui.name.setAttribute('aria-invalid', 'true');
            setMessage('error', 'Please enter your name first.');
            ui.name.focus();
            return;
        }
        var price = B.normalizePriceInput(ui.amount.value);
        if (price === null) {
            ui.amount.setAttribute('aria-invalid', 'true');
            setMessage('error', 'Enter the amount as a number, like '
                + (state.currentCents !== null && B.nextBidCents(state.currentCents) !== null
                    ? B.formatCents(B.nextBidCents(state.currentCents)) : '125.00') + '.');
            ui.amount.focus();
            return;
        }
        if (!state.live) {
            setMessage('error', 'Not connected right now, so your bid was not sent — wait until the page says Live, then try again.');
            return;
        }
        if (!ui.name.readOnly) {
            saveName(name);
        }
        state.refCounter += 1;
        var ref = 'web-' + Date.now().toString(36) + '-' + state.refCounter;
        if (!send({ type: 'bid', name: name, price: price, ref: ref })) {
            setMessage('error', 'Not connected right now, so your bid was not sent — try again in a moment.');
            return;
        }
        state.pending.set(ref, { price: price, name: name });
        setMessage('info', 'Sending your bid of ' + price + '…');
        updateSubmitState();
    }

    // ------------------------------------------------------------------ start

    function start() {
        loadName();
        var signed = token ? tokenName(token) : null;
        if (signed) {
            ui.name.value = signed;
            ui.name.readOnly = true;
            ui.name.setAttribute('aria-readonly', 'true');
            state.signedName = signed;
            updateHint();
        }
        ui.form.addEventListener('submit', onSubmit);
        ui.amount.addEventListener('input', function () {
            state.priceEdited = true;
            ui.amount.removeAttribute('aria-invalid');
        });
        ui.name.addEventListener('input', function () { ui.name.removeAttribute('aria-invalid'); });
        ui.name.addEventListener('change', function () {
            if (ui.name.value.trim() && !ui.name.readOnly) {
                saveName(ui.name.value.trim());
            }
        });
        if (state.id === null) {
            showNotFound();
            return;
        }
        document.title = 'Auction #' + state.idText;
        B.setText(ui.title, 'Auction #' + state.idText);
        window.addEventListener('online', function () {
            if (state.reconnectTimer) {
                state.attempt = 0;
                connect();
            }
        });
        setInterval(watchdog, 5000);
        // Back to a page kept in the browser's back/forward cache: its socket was closed meanwhile.
        window.addEventListener('pageshow', function (event) {
            if (event.persisted && !state.ws && !state.reconnectTimer) {
                state.attempt = 0;
                connect();
            }
        });
        updateSubmitState();
        connect();
    }

    // The tests read this (state only; nothing here changes how the page behaves).
    window.BiddingPage = {
        state: state,
        reconnectDelay: reconnectDelay
    };

    start();
}());
