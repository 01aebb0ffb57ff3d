"""Survivors looked at and explained (keyed by mutant ident: update them when the code moves).

EQUIVALENT: no test can kill them, because the program behaves the same (or differs only for
input no recording has); the sweep does not run them again and the report counts them apart.
UNKILLED: real differences no test catches, and why none does (yet).
"""

EQUIVALENT = {
    "asrd/output.py:177:7-33:<= -> <": "a piece exactly as wide as the line skips the shortcut and goes through "
    "the loop, which returns it whole all the same",
    "asrd/output.py:94:13-19:19903 -> 19904": "moves the end of CJK extension A onto U+4DC0, a Yijing hexagram "
    "symbol: no transcript holds it",
    "asrd/output.py:97:5-11:65280 -> 65281": "U+FF00 is unassigned: no text holds it",
    "asrd/output.py:95:13-19:40959 -> 40960": "moves the end of the CJK unified ideographs onto U+A000, the first "
    "Yi syllable: no FunASR model writes Yi",
    "asrd/output.py:597:12-24:return None": "`_is_free`'s callers only test its truth (`all(...)`, `not ...`): "
    "False and None alike",
    "asrd/watcher.py:107:8-20:return None": "`_scannable_dir`'s callers only test its truth: False and None alike",
    "asrd/output.py:220:8-87:+= -> -=": "every bound and the total change sign together: a cue's share of time is "
    "their ratio, the same",
    "asrd/watcher.py:240:56-60:True -> False": "the inbox is made only when it was found missing; `exist_ok` "
    "matters only if another process makes it in between, and then the check right after finds it all the same",
    "asrd/ledger.py:129:4-60:call dropped": "migration 2 rebuilds the jobs table (dropping migration 1's indexes "
    "with it) and makes the indexes again; every ledger asrd opens is migrated to 2 first",
    "asrd/ledger.py:197:8-30:return None": "`migrate`'s only caller (open_db's set-up) ignores the value",
    "asrd/daemon.py:309:11-46:and -> or": "a done job always has outputs (at least one format is configured), "
    "and a queued or failed one has none: both forms pick the same jobs",
    "asrd/daemon.py:337:8-22:return None": "`_locate`'s callers only compare its value with HERE: CHANGED and "
    "None alike",
    "asrd/engine/process.py:268:20-34:return None": "`_receive`'s callers treat any answer they do not know as "
    "the child's death: None ends as the same crash (or failed load) as CRASHED",
    "asrd/engine/process.py:298:37-81:>= -> >": "needs a monotonic-clock difference exactly equal (as a float) "
    "to idle_unload_s",
    "asrd/watcher.py:229:29-34:False -> True": "the first check of the inbox, at start, reads and clears the flag "
    "while `inbox_available` is still False, where the flag changes nothing",
    "asrd/watcher.py:380:34-35:5 -> 6": "the timeout of joining an observer thread that was just told to stop "
    "(it returns at once): a second more only matters for a thread that never stops",
    "asrd/output.py:250:21-52:< -> <=": "a cue that starts exactly where the last one ends: the trim sets both "
    "times to the values they already have",
    "asrd/ledger.py:239:28-59:<= -> <": "needs a process start time exactly equal (as a float) to the claim time "
    "plus the slack",
    "asrd/ledger.py:378:16-28:return None": "the caller only tests the value's truth (False and None alike)",
    "asrd/ledger.py:362:17-66:and -> or": "the extra cases it enters update a same-path job's mtime (content "
    "unchanged) or un-miss a job whose old path holds its content again: what the next offer does anyway",
    "asrd/watcher.py:108:11-61:not dropped": "the hint for a folder moved in is redundant: watchdog reports each "
    "file of a moved folder as its own event, and a scan of a skipped folder still skips its files",
    "asrd/watcher.py:108:4-61:return None": "as for dropping its `not`: the hint for a folder moved in is "
    "redundant (each of its files comes as its own event, and the rescans find them)",
    "asrd/watcher.py:97:8-20:return None": "`is_candidate`'s callers only test its truth (`if`, `not`): False "
    "and None alike",
    "asrd/watcher.py:164:7-21:> -> >=": "lets an inbox at /Volumes itself through to the mount check: on a Mac "
    "/Volumes always exists, so both forms say it may be created",
    "asrd/watcher.py:421:16-32:call dropped": "as for `_scannable_dir` (108): a folder's hint is redundant, "
    "each file of a folder moved in comes as its own event",
    "asrd/watcher.py:309:12-24:return None": "`_check_inbox`'s callers only test its truth (`if not ...`): False "
    "and None alike",
    "asrd/watcher.py:321:12-24:return None": "`_readable`'s callers only test its truth (`not ...`): False and None "
    "alike",
    "asrd/watcher.py:107:15-20:False -> True": "`_scannable_dir` is only given paths `_reroot` spelled under the "
    "inbox: its `relative_to` never fails",
    "asrd/daemon.py:72:36-64:| -> &": "both configs flatten the same dataclasses, so their keys are the same: "
    "union and intersection alike",
    "asrd/daemon.py:92:31-34:0.0 -> 1.0": "the first status write is due at once either way: the monotonic clock "
    "is far past 1 s when the daemon starts",
    "asrd/daemon.py:93:26-29:0.0 -> 1.0": "the first housekeeping is due at once either way: the monotonic clock "
    "is far past 1 s when the daemon starts",
    "asrd/daemon.py:110:12-20:return None": "`asrd run` returns `run()`'s value to SystemExit: None and 0 are both "
    "exit status 0",
    "asrd/daemon.py:124:12-26:call dropped": "the lock is an flock on a descriptor: `asrd run` exits right after "
    "`run()` returns, and the exit closes the descriptor and drops the lock the same way",
    "asrd/engine/process.py:83:27-30:0.0 -> 1.0": "the first start is due at once either way: the monotonic clock "
    "is far past 1 s",
    "asrd/engine/process.py:108:66-70:True -> False": "`daemon` matters at interpreter exit only, and the exit hook "
    "(`_kill_at_exit`, run before multiprocessing's own) has killed and reaped the child by then",
    "asrd/engine/process.py:288:26-41:> -> >=": "needs the engine's memory in MB, a float, exactly equal to the limit",
    "asrd/engine/process.py:302:8-20:return None": "`unload_if_idle`'s callers only test its truth: False and None "
    "alike",
    "asrd/daemon.py:153:33-37:True -> False": "the first status write, unforced, is still due (nothing was "
    "written yet: the last write is at monotonic 0), so it is written all the same",
    "asrd/daemon.py:178:8-27:call dropped": "the watcher's stop at shutdown: `asrd run` exits right after, and "
    "the observer's threads are daemon threads that end with the process",
    "asrd/daemon.py:193:11-63:>= -> >": "needs a monotonic-clock difference exactly equal (as a float) to "
    "HOUSEKEEPING_S",
    "asrd/watcher.py:216:21-26:False -> True": "`polls` is set from the volume before anything reads it",
    "asrd/watcher.py:308:11-48:or -> and": "when the inbox is gone (`ident is None`), `_readable()` is False too: "
    "both forms return False",
    "asrd/watcher.py:496:39-40:0 -> 1": "a 1-byte file would wait the empty-file settle time: no recording is 1 byte",
    "asrd/engine/process.py:146:11-48:and -> or": "the pipe and the process are set and cleared together; a "
    "dead child's pipe fails the send (caught) and its join returns at once",
    "asrd/daemon.py:153:8-38:call dropped": "status.json's first write at start: the loop's first turn, right "
    "after, writes it anyway (nothing written yet, so nothing throttles it)",
    "asrd/engine/process.py:254:15-64:and -> or": "an `assert` against programming errors, not behaviour",
    "asrd/engine/process.py:156:11-59:and -> or": "`_kill` then kills a child that already exited: "
    "multiprocessing sends no signal once it knows the exit status, and a zombie ignores SIGKILL; the join "
    "after returns at once either way",
    "asrd/engine/process.py:159:28-29:5 -> 6": "the join after a SIGKILL returns as soon as the child is reaped; "
    "the limit matters only for a child stuck in the kernel for 5 s after SIGKILL",
    "asrd/engine/process.py:160:11-33:is not -> is": "the parent's end of the pipe is closed anyway when its "
    "Connection is dropped on the next line (CPython frees it at once): no descriptor leaks "
    "(test_engines_started_and_stopped_again_and_again_leave_no_open_pipes passes with it)",
    "asrd/engine/process.py:161:12-30:call dropped": "the same: dropping the Connection closes it",
    "asrd/engine/process.py:100:14-49:< -> <=": "needs a monotonic-clock reading exactly equal (as a float) to the "
    "end of the backoff",
    "asrd/engine/process.py:264:32-33:5 -> 6": "the join after the pipe broke returns as soon as the child is "
    "reaped; the limit matters only for a child stuck in the kernel for 5 s",
    "asrd/ledger.py:128:4-76:call dropped": "the same as migration 1's other index: migration 2 rebuilds the "
    "table and makes both indexes again",
    "asrd/ledger.py:212:4-31:return None": "`migrate`'s other return: its only caller ignores the value",
    "asrd/ledger.py:210:8-32:call dropped": "migrate's ROLLBACK on an error: the caller closes the connection "
    "at once (init_wal's `closing`), and sqlite rolls back a transaction still open at close",
    "asrd/ledger.py:272:16-40:call dropped": "the same in `_write`: `closing` closes the connection right after, "
    "which rolls the open transaction back",
    "asrd/ledger.py:235:12-24:return None": "`_owner_alive`'s one caller only tests its truth",
    "asrd/ledger.py:238:8-20:return None": "`_owner_alive`'s one caller only tests its truth",
    "asrd/ledger.py:293:86-91:False -> True": "a job's outputs stored as JSON with \\u escapes instead of UTF-8: "
    "json.loads reads both back the same, and no query looks inside the text",
    "asrd/ledger.py:231:8-20:return None": "`_owner_alive`'s one caller only tests its truth",
    "asrd/ledger.py:380:12-24:return None": "`_still_holds`'s one caller only tests its truth (`not ...`)",
    "asrd/ledger.py:382:12-24:return None": "`_still_holds`'s one caller only tests its truth (`not ...`)",
    "asrd/ledger.py:417:35-36:1 -> 2": "`LIMIT -2` is no limit in sqlite, like `LIMIT -1`",
    "asrd/output.py:331:69-70:1 -> 2": "`m[1]` and `m[2]` come from the same alternative of the pattern: "
    "both are set or neither",
    "asrd/output.py:421:51-52:1 -> 2": "the temp name keeps one byte less of the target's name: still unique "
    "(pid and random part) and within NAME_MAX; nothing reads the target part back",
    "asrd/output.py:426:76-77:0 -> 1": "the default is for a platform without O_CLOEXEC: Linux and macOS have it",
    "asrd/output.py:427:39-40:0 -> 1": "the default is for a platform without O_NOFOLLOW: Linux and macOS have it",
    "asrd/output.py:429:19-22:100 -> 101": "the number of fresh random temp names tried: a second collision "
    "of a pid and 32 random bits does not happen",
    "asrd/output.py:520:75-80:False -> True": "the entries that reach it are regular files, never links (the "
    "check before it): following a link changes nothing",
    "asrd/output.py:530:7-24:< -> <=": "needs an age exactly equal (as a float) to min_age_s",
    "asrd/output.py:534:15-42:>= -> >": "needs an age exactly equal (as a float) to OLD_TEMP_MIN_AGE_S",
    "asrd/output.py:535:30-51:>= -> >": "needs an age exactly equal (as a float) to STALE_TEMP_S",
    "asrd/output.py:531:8-20:return None": "`_left_over`'s one caller only tests its truth",
    "asrd/output.py:544:8-20:return None": "`_alive`'s one caller only tests its truth (`not _alive(pid)`)",
    "asrd/output.py:592:8-20:return None": "`_is_free`'s callers only test its truth (`all(...)`, `not ...`): "
    "False and None alike",
    "asrd/output.py:91:13-19:12351 -> 12352": "U+3040, one past the CJK symbols block, is unassigned and "
    "starts the next range anyway",
    "asrd/output.py:92:13-19:12543 -> 12544": "U+3100, one past katakana, is unassigned (bopomofo starts at U+3105)",
    "asrd/output.py:93:13-19:12799 -> 12800": "U+3200 (a parenthesized hangul letter, ㈀) would break anywhere: "
    "no speech model writes it",
    "asrd/output.py:96:13-19:64255 -> 64256": "U+FB00, the Latin ligature ﬀ, would break anywhere: no speech "
    "model writes ligatures",
    "asrd/output.py:97:13-19:65519 -> 65520": "U+FFF0, one past the half/full-width forms, is unassigned",
    "asrd/output.py:98:14-21:262143 -> 262144": "U+40000, one past CJK extensions B+, is unassigned",
    "asrd/daemon.py:291:12-24:return None": "`_take_back`'s one caller only tests its truth: False and None alike",
    "asrd/daemon.py:479:25-68:< -> <=": "needs a monotonic-clock difference exactly equal (as a float) to "
    "STATUS_EVERY_S",
    "asrd/daemon.py:506:8-20:return None": "`_dataless`'s one caller only tests its truth: False and None alike",
}

UNKILLED = {
    "asrd/engine/process.py:28:9-12:0.1 -> 1.1": "the engine's poll interval: stops and deaths are noticed up "
    "to a second later; the tests bound waits loosely (a shared 2-core machine), so none sees one second",
    "asrd/engine/process.py:29:15-18:3.0 -> 4.0": "STOP_GRACE_S: the tests read the constant (a wedged child is "
    "killed within STOP_GRACE_S + 2 s), so changing it moves the check with it",
    "asrd/engine/process.py:30:21-24:1.0 -> 2.0": "the first restart backoff: the tests read the constant "
    "(the first retry waits RESTART_BACKOFF_S[0], the second twice that)",
    "asrd/engine/process.py:103:12-30:call dropped": "the backoff wait spins instead of sleeping: the same "
    "behaviour with one core busy for up to a minute; no test measures the daemon's CPU time",
    "asrd/engine/process.py:30:26-30:60.0 -> 61.0": "the restart backoff's cap: reached after 7 consecutive "
    "failed loads (1+2+...+64 s of waiting); tests check the first two steps (1 s, 2 s)",
    "asrd/engine/process.py:236:15-46:or -> and": "the reason a job went back when the engine child died of a "
    "stop signal just as asrd began stopping: both forms end STOPPED (requeued, uncounted), only the words "
    "differ; a test needs the stop to be set between the loop's stop check and the poll that sees the death",
    "asrd/watcher.py:187:12-41:call dropped": "the deleted-inbox event matters only when a new inbox reuses the "
    "old one's inode (otherwise the identity check sees the new folder); Linux does not promise the reuse, so "
    "no test can make it happen",
    "asrd/watcher.py:392:37-41:True -> False": "as for dropping the deleted-inbox call (187): the flag matters "
    "only when a new inbox reuses the old one's inode; otherwise the identity check sees the new folder",
    "asrd/watcher.py:341:8-32:call dropped": "when the inbox comes back its rescan finds every file again; kept "
    "candidates only change whether a file that held still across the absence waits the settle time once more "
    "(it is handed on up to `watch.settle_s` sooner); the content is the same either way",
    "asrd/watcher.py:342:8-30:call dropped": "files handed on before the inbox went away are not handed on again "
    "when it comes back unchanged; the daemon answers such a re-offer from its ledger (known content, nothing "
    "to do) and resumes waiting jobs from the ledger, not from the watcher; a test would need a daemon that "
    "lost a hand-off exactly while the inbox was away",
    "asrd/watcher.py:506:20-50:call dropped": "a hinted file that vanished keeps its handed-on record until the "
    "next rescan: a file with the same inode, size and mtime back at that path before then (moved out and back "
    "in) is not handed on again until the rescan (`watch.rescan_s`, 60 s)",
    "asrd/watcher.py:155:16-21:break -> continue": "`listing_error` looks at every entry instead of the first: "
    "the same answer, a cost that grows with the folder (an entry that vanishes mid-listing would also count); "
    "no test measures it",
    "asrd/daemon.py:51:14-17:1.0 -> 2.0": "IDLE_WAIT_S, the longest the idle loop sleeps between looks: "
    "housekeeping and status ticks come up to a second later; no test bounds them to the second (a shared "
    "2-core machine)",
    "asrd/daemon.py:53:17-20:5.0 -> 6.0": "HOUSEKEEPING_S: a recording back from missing is looked for every 6 s "
    "instead of 5; the tests wait for the resume with loose bounds",
    "asrd/daemon.py:121:71-75:60.0 -> 61.0": "the cap of the wait after consecutive loop errors: reached at the 7th "
    "error in a row (after 1+2+...+32 s of waits); tests check the first steps",
    "asrd/engine/process.py:112:8-26:call dropped": "the parent keeps its copy of the child's pipe end until "
    "`start()` returns (then refcounting closes it): a child that dies while loading gives no EOF meanwhile, "
    "and is seen dead by the next poll's `is_alive()` instead, at most POLL_S later",
    "asrd/daemon.py:153:8-38:call dropped": "status.json's first write at start: the idle loop writes it within "
    "STATUS_EVERY_S (1 s) anyway; a test would have to read it inside that second",
    "asrd/daemon.py:181:8-29:call dropped": "the notifier's close at shutdown: an announcement still queued "
    "behind a slow one is lost instead of going out within CLOSE_WAIT_S (2 s); a test needs one queued behind "
    "a hanging webhook at the moment of the stop",
    "asrd/daemon.py:183:33-37:True -> False": "the last status write at shutdown, unforced, is skipped only when "
    "another came less than STATUS_EVERY_S (1 s) before the stop; the tests' stops come later than that",
    "asrd/daemon.py:193:11-45:- -> +": "housekeeping (a ledger query for orphans and missing jobs) at every "
    "turn of the loop instead of every 5 s: the same outcomes at a cost no test measures",
    "asrd/daemon.py:402:51-52:2 -> 3": "the decoded length in the `job.stage` log line gets a third decimal; no "
    "test pins a log field's rounding",
    "asrd/daemon.py:204:37-41:0.05 -> 1.05": "the idle loop's shortest sleep: a settled file is picked up up to a "
    "second later; pickup latency is a benchmark figure (`benchmarks/daemon.py`), not a timed test",
    "asrd/output.py:223:15-16:0 -> 1": "a segment that ends where it starts (or before) gets a span of 1 ms "
    "instead of 0: its cues' times move by at most 1 ms before the overlap trim; no test pins cue times of a "
    "zero-length segment to the millisecond (they are arbitrary)",
    "asrd/daemon.py:273:12-50:call dropped": "the note that a file could not be read (so the warning is said "
    "once per size and mtime) is kept after it was read: it would only silence a second warning for that very "
    "size and mtime, which is never read again (the hash cache answers for it); one dict entry per such file "
    "until a restart",
    "asrd/daemon.py:479:25-51:- -> +": "the throttle of unforced status writes off: each idle turn and each "
    "progress message compares status.json with what it would write (write_status skips an unchanged one, "
    "which the quiet-daemon test checks), so only the cost differs: a read per turn, a rewrite per progress "
    "message; no test measures it",
    "asrd/daemon.py:492:89-90:2 -> 3": "the engine's load time in status.json gets a third decimal; no test pins "
    "a displayed figure's rounding",
    "asrd/daemon.py:506:15-20:False -> True": "a recording whose stat fails right after the watcher's succeeded "
    "is forgotten without trying to read it: for one that was moved away (ENOENT) that is what the read's "
    "own FileNotFoundError branch does; only another stat error (EIO from a failing disk) would lose its "
    "`file.unreadable` warning, and no test can make stat fail that way on a file the watcher just listed",
}
