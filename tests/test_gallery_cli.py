"""``facesift gallery ...`` end to end on real photos: enrol a folder per person, search, check, export, remove."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from facesift.cli import app

runner = CliRunner()


def test_gallery_commands_end_to_end(tmp_path, faces):
    people = tmp_path / "people"
    for person in ("07201", "07203"):
        (people / person).mkdir(parents=True)
        for photo in sorted((faces / "celeba300" / person).iterdir())[:4]:
            (people / person / photo.name).symlink_to(photo)
    gallery = str(tmp_path / "g.db")
    result = runner.invoke(app, ["gallery", "enroll", gallery, str(people), "--json"])
    assert result.exit_code == 0, result.output
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["person_id"] for r in reports] == ["07201", "07203"] and all(r["added"] >= 3 for r in reports)

    probe = sorted((faces / "celeba300" / "07201").iterdir())[10]
    result = runner.invoke(app, ["gallery", "search", gallery, str(probe), "--json"])
    found = json.loads(result.stdout)
    assert result.exit_code == 0 and found["decision"] == "match" and found["candidates"][0]["person_id"] == "07201"

    result = runner.invoke(app, ["gallery", "check", f"sqlite:///{gallery}", "07203", str(probe), "--json"])
    assert json.loads(result.stdout)["outcome"] == "other_person"
    result = runner.invoke(app, ["gallery", "check", gallery, "07201", str(faces / "wild" / "_multi_face" / "two_people.jpg")])
    assert result.exit_code == 0 and "MULTIPLE_FACES" in result.stdout

    stats = json.loads(runner.invoke(app, ["gallery", "stats", gallery, "--json"]).stdout)
    assert stats["persons"] == 2 and stats["samples"] == sum(r["added"] for r in reports)
    assert runner.invoke(app, ["gallery", "duplicates", gallery]).exit_code == 0

    exported = tmp_path / "g.jsonl.gz"
    assert runner.invoke(app, ["gallery", "export", gallery, str(exported)]).exit_code == 0
    copy = str(tmp_path / "copy.db")
    result = runner.invoke(app, ["gallery", "import", copy, str(exported)])
    assert result.exit_code == 0 and f"{stats['samples']} samples" in result.stdout

    assert runner.invoke(app, ["gallery", "remove", gallery, "07201"]).exit_code == 0
    result = runner.invoke(app, ["gallery", "remove", gallery, "07201"])
    assert result.exit_code == 6 and "No person '07201'" in result.output
    persons = json.loads(runner.invoke(app, ["gallery", "persons", gallery, "--json"]).stdout)
    assert [p["person_id"] for p in persons] == ["07203"]
    result = runner.invoke(app, ["gallery", "import", gallery, str(probe)])
    assert result.exit_code == 6 and "not a facesift gallery" in result.output
    result = runner.invoke(app, ["gallery", "enroll", gallery, str(probe.parent.parent / "missing")])
    assert result.exit_code == 2
