"""Live handover's core (issue 28), on SQLite and PostgreSQL: states, the queue, claim races,
the bot's silence, closing with a rating, office hours, statistics and the audit."""

import threading
from datetime import datetime, timezone

import pytest

from musaed import care_desk, handover, office_hours, store
from musaed.store import handover as rows

# Monday 1 December 2025, 10:00 in Riyadh (07:00 UTC): in the default office hours.
MONDAY_10 = datetime(2025, 12, 1, 7, 0, tzinfo=timezone.utc)
FRIDAY_10 = datetime(2025, 12, 5, 7, 0, tzinfo=timezone.utc)
ALWAYS = office_hours.parse("always")


def on_duty(db, *agents, now=None):
    for agent in agents:
        care_desk.seen(db, agent, now=now)


def test_office_hours_default_days_hours_and_holidays():
    default = office_hours.parse(None)
    assert default.is_open(MONDAY_10)
    assert not default.is_open(FRIDAY_10)  # Friday: closed
    assert not default.is_open(datetime(2025, 12, 1, 17, 0, tzinfo=timezone.utc))  # 20:00 Riyadh: closed
    # Friday morning → Sunday 08:00 Riyadh.
    assert default.next_opening(FRIDAY_10) == datetime(2025, 12, 7, 8, 0, tzinfo=office_hours.RIYADH)
    with_holiday = office_hours.parse("sun-thu 08:00-20:00; holidays 2025-12-01, 2025-12-02")
    assert not with_holiday.is_open(MONDAY_10)
    assert with_holiday.next_opening(MONDAY_10) == datetime(2025, 12, 3, 8, 0, tzinfo=office_hours.RIYADH)
    assert office_hours.parse("always").is_open(FRIDAY_10)
    assert office_hours.parse("fri 09:00-11:00").is_open(FRIDAY_10)
    for wrong in ("sun-thu 8-20", "funday 08:00-20:00", "sun 20:00-08:00"):
        with pytest.raises(ValueError):
            office_hours.parse(wrong)


def test_queue_places_and_asking_twice(open_store):
    db = open_store()
    on_duty(db, "huda", now=MONDAY_10)
    first = handover.request(db, "web:a", "web", "ar", office=ALWAYS, now=MONDAY_10)
    second = handover.request(db, "telegram:7", "telegram", "en", office=ALWAYS, now=MONDAY_10)
    again = handover.request(db, "web:a", "web", "ar", office=ALWAYS, now=MONDAY_10)
    assert (first.kind, first.position, second.position, again.position) == ("waiting", 1, 2, 1)
    reply = handover.request_reply("en", second)
    assert "place in the queue: 2" in reply["text"] and reply["buttons"][0]["payload"] == handover.CANCEL_PAYLOAD
    assert "ترتيبك في قائمة الانتظار: 1" in handover.request_reply("ar", first)["text"]
    assert "992" in handover.request_reply("ar", first)["text"]  # the call centre, for the urgent
    q = care_desk.queue(db, "huda", now=MONDAY_10)
    assert [(w["conversation_id"], w["position"], w["language"], w["channel"]) for w in q["waiting"]] == [
        ("web:a", 1, "ar", "web"),
        ("telegram:7", 2, "en", "telegram"),
    ]
    assert handover.state_of(db, "web:a") == "waiting" and handover.state_of(db, "web:b") == "bot"


def test_two_agents_claim_at_once_one_wins(open_store):
    db = open_store()
    on_duty(db, "huda", "omar")
    for n in range(5):
        conversation = f"web:race{n}"
        handover.request(db, conversation, "web", "ar", office=ALWAYS)
        results, barrier = {}, threading.Barrier(2)

        def claim(agent, conversation=conversation, barrier=barrier, results=results):
            mine = open_store()  # each agent's request on its own connection, as two processes
            barrier.wait()
            try:
                results[agent] = care_desk.claim(mine, agent, conversation)["handover"]["agent"]
            except handover.HandoverError as refused:
                results[agent] = refused.code

        threads = [threading.Thread(target=claim, args=(a,)) for a in ("huda", "omar")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results.values()) in (["already_claimed", "huda"], ["already_claimed", "omar"]), results
        winner = next(a for a, r in results.items() if r != "already_claimed")
        assert rows.open_handover(db, conversation)["agent"] == winner
    refused = store.care_audit(db, agent=None, limit=100)
    assert sum(r["action"] == "handover_claim_refused" for r in refused) == 5
    assert sum(r["action"] == "handover_claim" for r in refused) == 5


def test_bot_silent_while_held_and_both_sides_stored(open_store):
    db = open_store()
    on_duty(db, "huda")
    handover.request(db, "web:p", "web", "ar", office=ALWAYS)
    assert handover.on_person_message(db, "web:p", "ابي اجدد هويتي").to_bot  # waiting: the bot still answers
    care_desk.claim(db, "huda", "web:p")
    silent = handover.on_person_message(db, "web:p", "ابي اجدد هويتي")
    assert silent.to_bot is False and silent.replies == []
    button = handover.on_person_message(db, "web:p", "/renew_national_id", title="تجديد الهوية الوطنية")
    assert button.to_bot is False
    care_desk.send(db, "huda", "web:p", "أهلًا، كيف أخدمك؟")
    care_desk.note(db, "huda", "web:p", "يحتاج متابعة غدًا")
    with pytest.raises(handover.HandoverError) as not_yours:
        care_desk.send(db, "omar", "web:p", "hi")
    assert not_yours.value.code == "not_yours"
    with pytest.raises(handover.HandoverError) as empty:
        care_desk.send(db, "huda", "web:p", "  ")
    assert empty.value.code == "text_required"
    seen = care_desk.conversation(db, "huda", "web:p")
    assert seen["state"] == "agent"
    sides = [(m["side"], m["text"]) for m in seen["messages"] if m["side"] != "event"]
    assert ("person", "تجديد الهوية الوطنية") in sides and ("person", "/renew_national_id") not in sides
    assert ("agent", "أهلًا، كيف أخدمك؟") in sides and ("note", "يحتاج متابعة غدًا") in sides
    # What goes to the person: the agent joining and the agent's message, never the note.
    delivered = handover.pending_for(db, "web:p", "web")
    assert [d["text"] for d in delivered] == [
        "انضم إليك huda من خدمة العملاء. ولإنهاء المحادثة معه اكتب «ارجع للمساعد».",
        "أهلًا، كيف أخدمك؟",
    ]
    assert delivered[1]["custom"] == {"from": "agent", "agent": "huda"}
    assert handover.pending_for(db, "web:p", "web") == []  # delivered once


def test_close_rating_comment_and_the_bot_back(open_store):
    db = open_store()
    on_duty(db, "huda", "omar")
    handover.request(db, "rest:r", "rest", "en", office=ALWAYS)
    care_desk.claim(db, "huda", "rest:r")
    care_desk.pass_to(db, "huda", "rest:r", "omar", agents=["huda", "omar"])
    with pytest.raises(handover.HandoverError):
        care_desk.close(db, "huda", "rest:r")  # passed: Omar's now
    care_desk.close(db, "omar", "rest:r")
    assert handover.state_of(db, "rest:r") == "closed"
    closing = handover.pending_for(db, "rest:r", "rest")[-1]
    assert "assistant is back" in closing["text"]
    assert [b["title"] for b in closing["buttons"]] == ["1", "2", "3", "4", "5"]
    bad = handover.on_person_message(db, "rest:r", '/rate_agent{"score": 9}')
    assert bad.to_bot is False and "1 to 5" in bad.replies[0]["text"]
    rated = handover.on_person_message(db, "rest:r", closing["buttons"][3]["payload"])
    assert rated.to_bot is False and rated.replies[0]["buttons"][0]["payload"] == handover.COMMENT_PAYLOAD
    assert handover.state_of(db, "rest:r") == "bot"
    handover.on_person_message(db, "rest:r", handover.COMMENT_PAYLOAD)
    thanks = handover.on_person_message(db, "rest:r", "quick and kind")
    assert thanks.to_bot is False and "comment" in thanks.replies[0]["text"]
    assert handover.on_person_message(db, "rest:r", "renew my id").to_bot  # the bot again
    h = rows.latest_handover(db, "rest:r")
    assert (h["rating"], h["rating_comment"], h["closed_by"]) == (4, "quick and kind", "omar")
    stats = care_desk.stats(db)
    assert stats["per_agent"][0]["agent"] == "omar" and stats["per_agent"][0]["mean_rating"] == 4
    assert stats["per_day"][0]["handled"] == 1
    actions = [r["action"] for r in store.care_audit(db, limit=50)]
    for action in ("handover_claim", "handover_pass", "handover_close", "handover_close_refused"):
        assert action in actions


def test_waiting_cancelled_and_release_keeps_the_place(open_store):
    db = open_store()
    on_duty(db, "huda")
    handover.request(db, "web:c", "web", "ar", office=ALWAYS)
    cancelled = handover.on_person_message(db, "web:c", "ارجع للمساعد")
    assert cancelled.to_bot is False and "ألغيت الانتظار" in cancelled.replies[0]["text"]
    assert handover.state_of(db, "web:c") == "bot"
    assert care_desk.queue(db, "huda")["waiting"] == []
    handover.request(db, "web:first", "web", "ar", office=ALWAYS)
    handover.request(db, "web:second", "web", "ar", office=ALWAYS)
    care_desk.claim(db, "huda", "web:first")
    care_desk.release(db, "huda", "web:first")
    assert [w["conversation_id"] for w in care_desk.queue(db, "huda")["waiting"]] == ["web:first", "web:second"]


def test_out_of_hours_the_message_is_kept_for_the_next_agent(open_store):
    db = open_store()
    outcome = handover.request(db, "whatsapp:9665", "whatsapp", "ar", office=office_hours.parse(None), now=FRIDAY_10)
    assert outcome.kind == "out_of_hours"
    told = handover.request_reply("ar", outcome)["text"]
    assert "يوم الأحد 2025-12-07 الساعة 08:00" in told
    kept = handover.on_person_message(db, "whatsapp:9665", "اتصلوا علي بعد الظهر")
    assert kept.to_bot is False and "حفظت رسالتك" in kept.replies[0]["text"]
    assert handover.on_person_message(db, "whatsapp:9665", "وش الرسوم").to_bot  # the bot answers meanwhile
    # Next morning: the first agent sees it at the top of the queue, with the message.
    on_duty(db, "huda")
    waiting = care_desk.queue(db, "huda")["waiting"]
    assert waiting[0]["conversation_id"] == "whatsapp:9665" and waiting[0]["out_of_hours"]
    texts = [m["text"] for m in care_desk.conversation(db, "huda", "whatsapp:9665")["messages"]]
    assert "اتصلوا علي بعد الظهر" in texts
    # In hours but nobody on duty: out of hours too (nobody would answer).
    nobody = handover.request(db, "web:n", "web", "ar", office=ALWAYS, now=datetime(2030, 1, 1, tzinfo=timezone.utc))
    assert nobody.kind == "out_of_hours"


def test_identity_only_once_verified(open_store):
    from musaed import seed

    db = open_store()
    seed.seed(db)
    on_duty(db, "huda")
    handover.request(db, "web:anon", "web", "ar", office=ALWAYS)
    handover.request(db, "web:known", "web", "ar", national_id="1010000014", office=ALWAYS)
    waiting = {w["conversation_id"]: w for w in care_desk.queue(db, "huda")["waiting"]}
    assert waiting["web:anon"]["person"] is None
    assert waiting["web:known"]["person"]["masked_id"] == "1******014"
    assert waiting["web:known"]["person"]["name"]
    assert "1010000014" not in str(waiting)


def test_retention_purges_old_closed_handovers(open_store):
    from musaed import retention

    db = open_store()
    on_duty(db, "huda", now=datetime(2020, 1, 1, 7, tzinfo=timezone.utc))
    handover.request(db, "web:old", "web", "ar", office=ALWAYS, now=datetime(2020, 1, 1, 7, 1, tzinfo=timezone.utc))
    handover.on_person_message(db, "web:old", "ارجع للمساعد")
    handover.request(db, "web:new", "web", "ar", office=ALWAYS)
    counts = retention.purge_records(db, retention.parse(None))
    assert counts["handovers"] == 1
    assert rows.latest_handover(db, "web:old") is None and rows.messages_of(db, "web:old") == []
    assert rows.latest_handover(db, "web:new") is not None


def test_musaed_care_live_stats_per_day_and_agent(tmp_path):
    import json
    import os
    import subprocess
    import sys

    db_file = tmp_path / "musaed.db"
    db = store.open_db(db_file)
    on_duty(db, "huda")
    for n, score in enumerate((5, 3)):
        conversation = f"web:s{n}"
        handover.request(db, conversation, "web", "ar", office=ALWAYS)
        care_desk.claim(db, "huda", conversation)
        care_desk.close(db, "huda", conversation)
        handover.on_person_message(db, conversation, f'/rate_agent{{"score": {score}}}')
    env = {
        **os.environ,
        "MUSAED_DB": str(db_file),
        "MUSAED_CARE_TOKENS": "huda:huda-token-0123456789abcdef",
        "MUSAED_CARE_TOKEN": "huda-token-0123456789abcdef",
        "MUSAED_CARE_LOG": str(tmp_path / "care.log"),
    }
    run = [sys.executable, "-m", "care.cli", "live-stats"]
    out = subprocess.run([*run, "--json"], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert found["per_agent"] == [
        {
            "agent": "huda",
            "asked": 2,
            "handled": 2,
            "mean_wait_seconds": found["per_agent"][0]["mean_wait_seconds"],
            "mean_handling_seconds": found["per_agent"][0]["mean_handling_seconds"],
            "ratings": 2,
            "mean_rating": 4.0,
        }
    ]
    text = subprocess.run(run, env=env, capture_output=True, text=True, timeout=120).stdout
    assert "الموظف" in text and "huda | 2 | 2" in text
    refused = subprocess.run(run, env={**env, "MUSAED_CARE_TOKEN": "wrong"}, capture_output=True, timeout=120)
    assert refused.returncode == 2


def test_verifying_while_waiting_shows_the_person_to_agents_from_then_on(open_store):
    from musaed import seed

    db = open_store()
    seed.seed(db)
    on_duty(db, "huda")
    handover.request(db, "web:v", "web", "ar", office=ALWAYS)
    assert care_desk.queue(db, "huda")["waiting"][0]["person"] is None
    handover.person_verified(db, "web:v", "1010000014")
    assert care_desk.queue(db, "huda")["waiting"][0]["person"]["masked_id"] == "1******014"
    handover.person_verified(db, "web:other", "1010000014")  # no handover: nothing to tell
    assert rows.latest_handover(db, "web:other") is None


def test_the_person_may_leave_an_agent_and_the_bot_is_back(open_store):
    db = open_store()
    on_duty(db, "huda")
    handover.request(db, "web:leave", "web", "en", office=ALWAYS)
    care_desk.claim(db, "huda", "web:leave")
    left = handover.on_person_message(db, "web:leave", "back to the assistant")
    assert left.to_bot is False and "ended the conversation with the agent" in left.replies[0]["text"]
    assert handover.state_of(db, "web:leave") == "bot"
    assert handover.on_person_message(db, "web:leave", "hello").to_bot
    with pytest.raises(handover.HandoverError) as gone:
        care_desk.send(db, "huda", "web:leave", "are you there?")
    assert gone.value.code == "not_found" and "لا توجد محادثة" in gone.value.message
    events = [m["text"] for m in rows.messages_of(db, "web:leave") if m["side"] == "event"]
    assert "غادر العميل المحادثة" in events


def test_asking_again_once_agents_are_on_duty_gives_the_place_in_the_queue(open_store):
    db = open_store()
    first = handover.request(db, "web:again", "web", "en", office=ALWAYS)
    assert first.kind == "out_of_hours"  # nobody on duty
    on_duty(db, "huda")
    again = handover.request(db, "web:again", "web", "en", office=ALWAYS)
    assert (again.kind, again.position) == ("waiting", 1)
    assert len(care_desk.queue(db, "huda")["waiting"]) == 1  # still one place, not two
