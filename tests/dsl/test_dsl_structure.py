"""Relationships from structure, not phrasing (issue 20).

Each rule is checked on descriptions from several domains, none of them in the evaluation
sets: the rule has to hold for nouns and verbs it was never given. The expected links are
what a careful engineer would draw; a test fails when the analysis draws another or none.
"""

from __future__ import annotations

import pytest

from hubbub.dsl import merge as mg
from hubbub.dsl.analysis import analyze
from hubbub.dsl.domain import is_event, is_person
from hubbub.dsl.normalize import normalize
from hubbub.dsl.phase import confidence
from hubbub.dsl.schema import Dsl
from hubbub.dsl.text import sentences
from hubbub.dsl.validate import problems

M2O, M2M = "many-to-one", "many-to-many"


def run(*turns: str) -> Dsl:
    dsl = None
    for turn in turns:
        dsl = normalize(analyze(dsl, [turn]).dsl)
    assert dsl is not None and problems(dsl) == []
    return dsl


def links(dsl: Dsl) -> set[tuple[str, str, str]]:
    out = set()
    for r in dsl.relationships:
        a, b = (sorted((r.source, r.target)) if r.type == M2M else (r.source, r.target))
        out.add((a, r.type, b))
    return out


@pytest.mark.parametrize(("name", "person", "event"), [
    ("Beekeeper", True, False), ("Florist", True, False), ("Auditor", True, False), ("Crew", True, False),
    ("Freezer", False, False), ("Container", False, False), ("Sighting", False, True), ("Inspection", False, True),
    ("Shipment", False, True), ("Rental", False, True), ("Building", False, False), ("Department", False, False),
    ("Station", False, False), ("Animal", False, False),
])
def test_what_an_entity_is_from_its_name(name, person, event):
    """Persons and records of something done, from the word alone (suffixes, a verb stem)."""
    assert (is_person(name), is_event(name)) == (person, event)


@pytest.mark.parametrize(("text", "expected"), [
    # an actor makes or does something: it belongs to them, and to what it is for
    ("Gardeners plant bulbs in beds.", {("Bulb", M2O, "Gardener"), ("Bulb", M2O, "Bed")}),
    ("Auditors file findings for audits.", {("Finding", M2O, "Auditor"), ("Finding", M2O, "Audit")}),
    ("Lessees sign contracts for garages.", {("Contract", M2O, "Lessee"), ("Contract", M2O, "Garage")}),
    # a record of something done links its actor and its target, whatever the verb
    ("Patrons reserve lanes. Patrons make bookings for a lane.", {("Booking", M2O, "Patron"), ("Booking", M2O, "Lane")}),
    ("Shoppers request refunds for orders.", {("Refund", M2O, "Shopper"), ("Refund", M2O, "Order")}),
])
def test_actors_own_what_they_make_and_records_link_both_sides(text, expected):
    assert expected <= links(run(text))


@pytest.mark.parametrize(("text", "expected"), [
    ("Fleets contain trucks, trucks have compartments.", {("Truck", M2O, "Fleet"), ("Compartment", M2O, "Truck")}),
    ("Archive: boxes -> folders -> letters", {("Folder", M2O, "Box"), ("Letter", M2O, "Folder")}),
    ("Orchards with rows, each row with several trees.", {("Row", M2O, "Orchard"), ("Tree", M2O, "Row")}),
])
def test_what_has_or_contains_things_is_their_parent(text, expected):
    assert expected <= links(run(text))


@pytest.mark.parametrize(("text", "expected"), [
    ("Hikers join clubs.", {("Club", M2M, "Hiker")}),
    ("Cyclists can follow each other.", {("Cyclist", M2M, "Cyclist")}),
    ("Parents sign up for carpools.", {("Carpool", M2M, "Parent")}),
    ("Designers are added to workspaces.", {("Designer", M2M, "Workspace")}),
    ("Tutors are matched with pupils.", {("Pupil", M2M, "Tutor")}),
])
def test_symmetric_verbs_pair_both_ways(text, expected):
    assert expected <= links(run(text))


def test_a_record_named_later_joins_the_pairing_it_stands_for():
    """"borrow" pairs members and kayaks; once the user names the borrowing, it links both instead."""
    dsl = run("Members borrow kayaks.", "Keep each checkout with the date it was returned.")
    assert {("Checkout", M2O, "Kayak"), ("Checkout", M2O, "Member")} <= links(dsl)
    assert not mg.linked(dsl, "Member", "Kayak")


@pytest.mark.parametrize(("text", "owner", "expected"), [
    ("Sommeliers taste wines. Each tasting = sommelier + wine + score", "Tasting",
     {("Tasting", M2O, "Sommelier"), ("Tasting", M2O, "Wine")}),
    ("Coaches run drills. Drill logs: which athlete, which drill, how many reps", "DrillLog",
     {("DrillLog", M2O, "Athlete"), ("DrillLog", M2O, "Drill")}),
])
def test_a_record_spelled_out_has_its_parts(text, owner, expected):
    dsl = run(text)
    assert expected <= links(dsl)
    assert any(f not in ("id",) and not f.endswith("Id") for f in dsl.entities[owner])  # score / reps: fields


def test_list_items_and_numbered_steps_are_sentences():
    assert sentences("Shop:\n- candles\n- customers\n2. customers order candles") == [
        "Shop:", "candles", "customers", "customers order candles"]
    dsl = run("Bakery app\n- cakes\n- customers\n- customers order cakes for parties")
    assert {"Cake", "Customer", "Party"} <= set(dsl.entities)
    assert mg.linked(dsl, "Cake", "Customer") and ("Cake", M2O, "Party") in links(dsl)


def test_an_unlinked_entity_gets_an_inferred_parent():
    """The nearest entity where it was mentioned; the guess is marked inferred (half the support)."""
    analysis = analyze(None, ["Observatory log: telescopes, nights and comets. Astronomers spot comets."])
    dsl = analysis.dsl
    linked = {r.source for r in dsl.relationships} | {r.target for r in dsl.relationships}
    assert set(dsl.entities) <= linked
    guessed = [k for k, how in analysis.provenance.items() if k[0] == "rel" and how == "inferred"]
    assert guessed
    stated_only = confidence(dsl, {k: "stated" for k in analysis.provenance}, None)
    assert confidence(dsl, analysis.provenance, None) < stated_only


def test_a_guessed_parent_gives_way_to_what_the_user_says():
    first = analyze(None, ["Rehearsal planner: bands, rooms and amplifiers."])
    guesses = {k for k, how in first.provenance.items() if k[0] == "rel" and how == "inferred"}
    later = analyze(None, ["Rehearsal planner: bands, rooms and amplifiers.", "Amplifiers belong to studios."])
    assert ("Amplifier", M2O, "Studio") in links(normalize(later.dsl))
    amp = {k for k in guesses if "Amplifier" in k}
    assert amp and amp <= later.superseded
    assert not any(mg.rel_key(r) in amp for r in later.dsl.relationships)


def test_people_acting_in_a_story_are_entities():
    dsl = run("When a pump fails, the operator opens a ticket for it, and a plumber is assigned to the ticket.")
    assert {"Operator", "Ticket", "Plumber"} <= set(dsl.entities)
    assert {("Ticket", M2O, "Operator"), ("Ticket", M2O, "Plumber")} <= links(dsl)
