"""What a careful engineer knows about app data models, written down as tables.

* ``field_spec``: the type (and flags) a field word implies — ``email`` is a
  unique string, ``due date`` a date, ``status`` an enum, ``price`` a number.
* ``ENUM_DEFAULTS``: values for status-like fields when the user named none.
* ``KB``: for common entities, their usual parents (a comment belongs to a
  post and to its author) and a few typical fields, used only where the user
  did not say. Pairs in ``MANY_TO_MANY`` are linked many-to-many by default.
* word classes: app words (``app``, ``tracker``), process words
  (``management``), person nouns (for ``author``/``assignee`` roles) and nouns
  that are never entities (``time``, ``details``).
"""

from __future__ import annotations

from dataclasses import dataclass


def _set(text: str) -> frozenset[str]:
    return frozenset(text.split())


APP_WORDS = _set(
    "app apps system platform tool site website service software portal dashboard solution backend "
    "api program database tracker manager planner organizer builder marketplace network community crm erp cms "
    "lms wiki directory registry helpdesk clone saas webapp prototype mvp logbook diary scheduler"
)
PROCESS_WORDS = _set(
    "management tracking sharing planning scheduling booking ordering delivery rental reservation streaming "
    "membership hosting publishing reporting monitoring logging learning dating messaging listing review "
    "reviews exchange sales selling lending support ticketing invoicing billing budgeting accounting"
)
INSTITUTIONS = _set("school library gym clinic hospital restaurant hotel company business team office church club")
# The business an app is for, when the user names it as one ("the museum lends objects", "retain the firm").
THE_BUSINESS = INSTITUTIONS - {"team", "club"} | _set(
    "museum firm agency studio shop store cafe café bakery salon brewery farm practice organization organisation "
    "charity nonprofit venue theatre theater cinema gallery zoo shelter center centre")
MASS_NOUNS = _set(
    "fitness inventory time money health content data social music video food travel news weather finance "
    "education real estate e-commerce ecommerce commerce online web mobile personal internal home family "
    "small simple basic fun work my our"
)
NON_ENTITIES = _set(
    "thing things feature features way ways detail details info information stuff lot lots kind kinds type "
    "types sort part parts bit bits time times day days week weeks month months year years hour hours "
    "minute minutes second seconds number numbers amount amounts field fields entity entities "
    "model models relationship relationships idea ideas example examples everything "
    "something anything nothing one ones set_ app apps system systems data basis case cases point "
    "reason need needs way side end beginning start rest moment right access ability chance fact "
    "problem problems support_ page_ screen screens button buttons form forms user_interface "
    "ui ux frontend backend database tbd etc e.g i.e per cent percent level_ unit units quantity_ start_ "
    "clear sense change changes update updates version versions mvp v1 beta future today tomorrow yesterday "
    "weekend morning evening night sign_ look dollar dollars euro euros cent cents star_ stars_ "
    "instance instances purpose goal goals money history "
    "handful once afterward afterwards advance initial initials spreadsheet whiteboard binder mess "
    "paper_ while bunch dozen range span"
)
# Amounts of a substance: "litres of milk", "how many kilos" are a number, never an entity.
AMOUNTS = _set("litre liter kilo kilogram kilogramme kg gram gramme tonne ton pound ounce ml millilitre milliliter "
               "gallon pint cup tablespoon teaspoon")
# Times of the calendar: never an entity ("most Sundays", "every afternoon", "for each weekday lunch").
CALENDAR = _set("monday tuesday wednesday thursday friday saturday sunday weekday weekend morning afternoon "
                "evening night noon midnight lunch lunchtime breakfast dinner tonight january february march "
                "april may june july august september october november december")
# Measures: "a price per kWh", "a rate per hour" is one number per unit, not one record per instance.
UNITS = _set("kwh kw wh mwh kg g mg lb lbs oz ton tonne km mi mile miles meter metre liter litre ml gallon gram "
             "kilo kilogram kilogramme gramme millilitre milliliter centimetre centimeter millimetre millimeter "
             "pound ounce inch foot feet yard acre hectare byte kb mb gb tb percent cent unit serving")


def is_unit(word: str) -> bool:
    """A unit of measure: listed, or an abbreviation without a vowel ("kwh", "kg", "mph")."""
    return word in UNITS or word.isalpha() and len(word) <= 4 and not set(word) & set("aeiouy")


# Meta words that are data where an entity stands, in the plural ("the parts used", "buildings have units").
SOFT_NON_ENTITIES = _set("part unit version screen case model form change update problem goal feature idea page "
                         "level type point step lot field")

PERSONS = _set(
    "user member customer author writer student teacher instructor patient doctor employee agent guest client "
    "candidate subscriber attendee listener reader buyer seller host owner driver player tenant landlord "
    "volunteer artist speaker contact person visitor manager staff admin administrator vendor freelancer parent "
    "child coach trainer athlete musician photographer participant applicant traveler traveller passenger "
    "rider donor recruiter editor moderator reviewer organizer organiser nurse therapist lawyer worker "
    "courier shopper learner tutor mentor developer designer follower fan viewer creator backer vet "
    "respondent borrower renter bidder voter owner friend colleague"
)
# Relatives: "my aunt has letters" is the one person the app is for, not data.
FAMILY = _set("mother father mom dad mum sister brother aunt uncle cousin grandmother grandfather grandma grandpa "
              "wife husband partner son daughter boss")
# People named by their relation to another person: the app's own people ("share a trip with friends").
PEERS = _set("friend colleague peer other others someone somebody everybody anyone")
# Role nouns that name a person's part in something, not a kind of person:
# "each task has an assignee" links Task to the person entity, named "assignee".
ROLES = _set(
    "assignee assignees owner creator reporter reviewer approver organizer organiser host author editor "
    "moderator manager sender recipient receiver buyer seller follower leader captain referee winner "
    "responsible"
)

# "a <collection> of Xs" names the Xs ("a program of pieces", "a list of activities").
COLLECTIONS = _set(
    "number count list set history log series collection record program programme playlist menu catalog "
    "catalogue cast run roster lineup range selection queue bunch group pile library portfolio pair"
)


def is_collection(head: str) -> bool:
    """A word for a collection of things ("a program of pieces", "a setlist of songs")."""
    return head in COLLECTIONS or head.endswith("list") and len(head) > 5


# Heads that make a compound entity name with the noun before them ("time entry", "reward tier").
GENERIC_HEADS = _set("item record entry level line slot plan tier request log type detail option method address")
# Things a parent has exactly one of: "users have a profile" is one-to-one.
ONE_TO_ONE = _set("profile settings wallet cart preference preferences account_settings")
# Verbs that say nothing about ownership ("vets see pets").
NEUTRAL_VERBS = _set("see view meet help treat contact call find search browse check like_ get go come want need use")
# Verbs whose subject handles the object ("couriers deliver orders": the order gets a courier).
SERVE_VERBS = _set("deliver handle drive fulfil fulfill process approve grade serve assign review_ manage coach")
# Passive verbs that split the subject into parts ("gardens are divided into beds").
DIVIDE_VERBS = _set("divide split break separate partition")  # "gardens are divided into beds": beds are parts
# "devices are grouped into fleets": the subject is the part (not "divided", where the object is)
GROUP_VERBS = _set("group organize organise sort cluster bundle gather")
# Words the user treats as entity names made of two words.
COMPOUNDS = _set(
    "line_item order_item cart_item invoice_item stock_level mailing_list membership_plan time_slot "
    "shopping_cart blog_post gift_card credit_card user_profile price_list to_do check_in check_out "
    "wish_list purchase_order work_order job_posting job_application meal_plan support_ticket chat_room "
    "payment_method shipping_address help_article line_items pull_request sales_order"
)


@dataclass(frozen=True)
class FieldSpec:
    type: str
    required: bool = False
    unique: bool = False


def _specs(table: str, type_: str, required: bool = False, unique: bool = False) -> dict[str, FieldSpec]:
    return {w.replace("_", " "): FieldSpec(type_, required, unique) for w in table.split()}


FIELDS: dict[str, FieldSpec] = {
    **_specs("name title label", "string", required=True),
    **_specs("email username handle slug sku isbn code", "string", required=True, unique=True),
    **_specs(
        "first_name last_name full_name display_name nickname phone phone_number mobile address city country "
        "state_code zip zip_code postal_code website url link avatar image photo picture logo cover "
        "cover_image thumbnail color colour location language timezone currency password password_hash "
        "make model brand author_name subject headline company_name job_title position_title icon "
        "audio_url video_url file_url seat seat_number room_number plate license_plate vin account_number "
        "iban reference tracking_number order_number invoice_number street genre_name cuisine unit",
        "string",
    ),
    **_specs(
        "description bio body content text notes note summary excerpt comment message instructions details "
        "biography caption answer question feedback cover_letter resume requirements ingredients_text "
        "directions review_text transcript lyrics remarks diagnosis treatment terms",
        "text",
    ),
    **_specs(
        "price cost amount total subtotal salary budget balance fee rate tax discount weight height distance "
        "latitude longitude score unit_price daily_rate hourly_rate total_price total_amount revenue value "
        "percentage goal_amount length width depth area temperature grade",
        "number",
    ),
    **_specs(
        "quantity count stock capacity age year duration calories reps sets servings pages bedrooms "
        "bathrooms rating position sort_order rank floor seats party_size release_year year_published "
        "minutes hours points views likes attempts max_attendees stock_quantity cooking_time prep_time "
        "units number_of_guests guests_count page_count word_count priority_level",
        "integer",
    ),
    **_specs(
        "date due_date start_date end_date birthday date_of_birth birth_date deadline release_date "
        "check_in_date check_out_date hire_date expiry_date expiration_date published_on issue_date "
        "return_date",
        "date",
    ),
    **_specs(
        "created_at updated_at published_at timestamp start_time end_time time scheduled_at starts_at "
        "ends_at completed_at sent_at paid_at joined_at occurred_at logged_at datetime scheduled_time "
        "check_in_time check_out_time",
        "datetime",
    ),
    **_specs(
        "completed done active approved published paid verified archived featured public private available "
        "enabled read pinned flagged visible returned shipped cancelled canceled refunded resolved "
        "is_active is_public is_done is_completed in_stock vegetarian vegan",
        "boolean",
    ),
    **_specs("metadata settings preferences attributes config configuration payload options extra specs", "json"),
    **_specs(
        "status state stage priority role type kind category gender size visibility difficulty level "
        "frequency tier condition mood plan_type payment_method severity",
        "enum",
    ),
}
_ENUM_REQUIRED = _set("status state stage priority role")
PLURAL_FIELDS = _set("sets reps calories servings minutes hours pages bedrooms bathrooms seats points views likes attempts "
                     "notes instructions details settings preferences specs requirements directions units lyrics dates "
                     "distances dimensions quantities amounts")

ENUM_DEFAULTS: dict[str, dict[str, list[str]]] = {
    "status": {
        "task": ["todo", "in_progress", "done"], "todo": ["todo", "in_progress", "done"],
        "order": ["pending", "paid", "shipped", "delivered", "cancelled"],
        "post": ["draft", "published", "archived"], "article": ["draft", "published", "archived"],
        "page": ["draft", "published", "archived"], "recipe": ["draft", "published"],
        "ticket": ["open", "in_progress", "resolved", "closed"], "issue": ["open", "in_progress", "closed"],
        "invoice": ["draft", "sent", "paid", "overdue"], "booking": ["pending", "confirmed", "cancelled", "completed"],
        "reservation": ["pending", "confirmed", "cancelled", "completed"],
        "appointment": ["scheduled", "completed", "cancelled"], "project": ["planned", "active", "completed", "archived"],
        "application": ["submitted", "reviewing", "accepted", "rejected"], "payment": ["pending", "completed", "failed", "refunded"],
        "loan": ["active", "returned", "overdue"], "rental": ["reserved", "active", "returned", "cancelled"],
        "deal": ["open", "won", "lost"], "job": ["open", "closed"], "event": ["scheduled", "cancelled", "completed"],
        "campaign": ["draft", "scheduled", "sent"], "review": ["pending", "approved", "rejected"],
        "comment": ["pending", "approved", "rejected"], "shipment": ["pending", "in_transit", "delivered"],
        "": ["active", "inactive"],
    },
    "state": {"": ["active", "inactive"]},
    "stage": {"deal": ["lead", "qualified", "proposal", "won", "lost"], "": ["new", "in_progress", "done"]},
    "priority": {"": ["low", "medium", "high"]},
    "severity": {"": ["low", "medium", "high"]},
    "role": {"": ["admin", "member"], "user": ["admin", "user"]},
    "gender": {"": ["female", "male", "other"]},
    "visibility": {"": ["public", "private"]},
    "difficulty": {"": ["easy", "medium", "hard"]},
    "level": {"": ["beginner", "intermediate", "advanced"]},
    "frequency": {"": ["daily", "weekly", "monthly"]},
    "condition": {"": ["new", "used"]},
    "size": {"": ["small", "medium", "large"]},
}


def enum_defaults(field_name: str, entity: str) -> list[str] | None:
    table = ENUM_DEFAULTS.get(field_name.lower())
    if table is None:
        return None
    return list(table.get(entity.lower(), table.get("", [])))


def field_spec(phrase: str) -> FieldSpec | None:
    """The spec a field phrase (lowercase words) implies; None when nothing is known about it."""
    p = phrase.strip()
    if p in FIELDS:
        return FIELDS[p]
    last = p.split()[-1] if p else ""
    if p.startswith(("is ", "has ", "can ")):
        return FieldSpec("boolean")
    if last in ("date", "day", "deadline", "birthday"):
        return FieldSpec("date")
    if last in ("at", "time", "timestamp", "datetime"):
        return FieldSpec("datetime")
    if last in ("price", "cost", "amount", "total", "fee", "rate", "salary", "budget", "balance", "weight", "score"):
        return FieldSpec("number")
    if last in ("count", "quantity", "number", "size", "year", "age", "duration", "capacity", "minutes", "hours"):
        return FieldSpec("integer") if last != "number" else FieldSpec("string")
    if last in ("url", "link", "image", "photo", "name", "title", "address", "phone", "code", "color"):
        return FieldSpec("string")
    if last in ("description", "notes", "text", "content", "body", "summary", "bio", "comment", "message", "letter"):
        return FieldSpec("text")
    if last in ("flag",):
        return FieldSpec("boolean")
    if last in FIELDS and FIELDS[last].type == "enum":
        return FieldSpec("string")  # "payment type", "room type": a type word without known values
    return None


def enum_required(field_name: str) -> bool:
    return field_name in _ENUM_REQUIRED


@dataclass(frozen=True)
class Kb:
    """Usual parents (slots of candidates, first present wins) and typical fields of an entity."""

    parents: tuple[tuple[str, ...], ...] = ()
    fields: tuple[str, ...] = ()
    role: str | None = None  # relationship name for a person parent ("author")


_PEOPLE = ("user", "member", "customer", "employee")
KB: dict[str, Kb] = {
    "post": Kb((("thread", "topic", "forum", "board", "category", "group", "blog"), ("author", "user", "member", "writer")),
               ("title", "content", "published at"), "author"),
    "article": Kb((("category", "magazine", "blog"), ("author", "user", "writer", "editor")), ("title", "body", "published at"), "author"),
    "comment": Kb((("post", "article", "photo", "video", "recipe", "task", "ticket", "issue", "thread", "review", "episode", "product"),
                   ("user", "member", "customer", "reader")), ("content", "created at"), "author"),
    "reply": Kb((("thread", "comment", "post", "question", "review", "message"), ("user", "member")), ("content",), "author"),
    "thread": Kb((("board", "forum", "category", "channel", "topic"), ("user", "member")), ("title",), "author"),
    "topic": Kb((("forum", "board", "category"),), ("title",)),
    "review": Kb((("product", "movie", "book", "recipe", "restaurant", "hotel", "course", "property", "place", "game", "album"),
                  ("user", "customer", "member", "reader", "guest")), ("rating", "content"), "author"),
    "rating": Kb((("movie", "product", "recipe", "book", "course", "driver"), ("user", "customer", "member"))),
    "like": Kb((("post", "photo", "comment", "video"), ("user", "member"))),
    "order": Kb((("customer", "user", "buyer", "client", "member"),), ("status", "total", "created at"), None),
    "order item": Kb((("order",), ("product", "item", "book", "dish", "menu item")), ("quantity", "unit price")),
    "line item": Kb((("invoice", "order", "quote", "bill"), ("product", "service", "item")), ("description", "quantity", "unit price")),
    "cart item": Kb((("cart", "shopping cart"), ("product",)), ("quantity",)),
    "cart": Kb((("customer", "user"),)),
    "payment": Kb((("invoice", "order", "booking", "reservation", "rental", "loan", "subscription"), ("customer", "client", "user", "member")),
                  ("amount", "paid at", "status")),
    "invoice": Kb((("client", "customer", "company", "account"),), ("number", "issue date", "due date", "status")),
    "product": Kb((("category", "brand", "store", "shop", "seller", "vendor", "supplier"),), ("name", "description", "price")),
    "variant": Kb((("product",),)),
    "task": Kb((("project", "list", "board", "column", "milestone", "sprint", "todo list"),), ("title", "status", "due date")),
    "subtask": Kb((("task",),)),
    "project": Kb((("team", "workspace", "organization", "company", "client"),), ("name", "description")),
    "milestone": Kb((("project",),), ("title", "due date")),
    "issue": Kb((("project", "repository", "milestone"),), ("title", "status")),
    "lesson": Kb((("course", "module", "chapter", "unit"),), ("title", "content", "position")),
    "module": Kb((("course",),)),
    "chapter": Kb((("book", "course"),)),
    "quiz": Kb((("lesson", "course", "module"),), ("title",)),
    "question": Kb((("quiz", "exam", "survey", "test", "form"),), ("text",)),
    "answer": Kb((("question",), ("user", "student", "respondent"))),
    "episode": Kb((("podcast", "show", "series", "season"),), ("title", "audio url", "duration")),
    "season": Kb((("show", "series"),)),
    "song": Kb((("album",), ("artist",)), ("title", "duration")),
    "track": Kb((("album", "playlist"), ("artist",)), ("title", "duration")),
    "album": Kb((("artist", "band", "user"),), ("title",)),
    "photo": Kb((("album", "gallery", "property", "listing", "product", "post"), ("user", "photographer", "member")), ("url", "caption")),
    "image": Kb((("product", "property", "listing", "post", "album", "gallery"),), ("url",)),
    "playlist": Kb((("user", "listener", "member"),), ("name",), "owner"),
    "room": Kb((("hotel", "building", "property", "house", "apartment", "floor"),), ("number", "capacity", "price")),
    "booking": Kb((("room", "hotel", "event", "property", "listing", "class", "session", "flight", "car", "table", "slot", "time slot"),
                   ("guest", "customer", "user", "member", "client", "traveler")), ("start date", "end date", "status")),
    "reservation": Kb((("table", "room", "restaurant", "hotel", "book", "car", "slot", "time slot"), ("customer", "guest", "user", "member")),
                      ("time", "party size", "status")),
    "table": Kb((("restaurant",),), ("number", "seats")),
    "ticket": Kb((("event", "show", "concert", "flight", "match", "screening"), ("attendee", "customer", "user", "buyer", "member"))),
    "support ticket": Kb((("customer", "user"),), ("subject", "status")),
    "event": Kb((("venue", "organizer", "calendar", "group", "location"),), ("name", "start time")),
    "session": Kb((("event", "conference", "course", "trainer", "speaker"),)),
    "appointment": Kb((("patient", "client", "customer", "pet"), ("doctor", "vet", "dentist", "therapist", "provider", "stylist", "staff", "trainer")),
                      ("scheduled at", "status")),
    "prescription": Kb((("patient",), ("doctor",)), ("medication", "dosage")),
    "visit": Kb((("patient", "customer", "member"), ("doctor", "location", "store"))),
    "check in": Kb((("member", "user", "guest", "customer", "attendee"),), ("timestamp",)),
    "loan": Kb((("book", "item", "copy", "tool"), ("member", "borrower", "user", "patron")), ("due date", "returned")),
    "rental": Kb((("car", "vehicle", "bike", "equipment", "property", "item", "scooter"), ("customer", "user", "renter", "member")),
                 ("start date", "end date", "total price")),
    "enrollment": Kb((("course", "class", "program"), ("student", "learner", "user", "member")), ("enrolled at", "grade")),
    "registration": Kb((("event", "course", "class", "conference"), ("attendee", "participant", "user", "member"))),
    "application": Kb((("job", "position", "program", "listing"), ("candidate", "applicant", "user")), ("status",)),
    "job": Kb((("company", "employer", "recruiter", "organization"),), ("title", "description", "salary")),
    "employee": Kb((("department", "company", "team", "store"),), ("name", "email")),
    "contact": Kb((("company", "account", "organization"),), ("name", "email", "phone")),
    "deal": Kb((("company", "account", "contact", "customer"), ("user", "salesperson", "agent", "owner")), ("title", "amount", "stage")),
    "message": Kb((("conversation", "chat", "channel", "thread", "room", "chat room"), ("user", "member", "sender")), ("content", "sent at")),
    "channel": Kb((("workspace", "team", "server", "group"),)),
    "expense": Kb((("category", "trip", "budget", "account"), ("user", "member", "employee")), ("amount", "date", "description")),
    "budget": Kb((("category", "project"), ("user", "member")), ("amount", "month")),
    "transaction": Kb((("account", "wallet", "category", "card"), ("user", "customer")), ("amount", "date")),
    "account": Kb((("user", "customer", "company", "owner"),)),
    "workout": Kb((("user", "member", "athlete", "trainee"),), ("date", "duration")),
    "exercise": Kb((("workout", "routine", "program", "lesson"),), ("name", "sets", "reps")),
    "meal": Kb((("user", "plan", "meal plan", "day"),)),
    "recipe": Kb((("user", "chef", "author", "cook", "category"),), ("title", "instructions"), None),
    "property": Kb((("agent", "owner", "landlord", "host"),), ("address", "price")),
    "listing": Kb((("host", "seller", "agent", "user", "owner"),), ("title", "price")),
    "viewing": Kb((("property", "listing", "apartment", "house"), ("buyer", "client", "customer", "user")), ("scheduled at",)),
    "stock level": Kb((("product", "item", "sku"), ("warehouse", "location", "store")), ("quantity",)),
    "shipment": Kb((("order",), ("carrier", "warehouse"))),
    "book": Kb((("author", "publisher", "library", "shelf"),), ("title", "isbn")),
    "copy": Kb((("book",), ("library", "branch"))),
    "movie": Kb((("director", "studio"),), ("title", "release year")),
    "note": Kb((("notebook", "folder", "user", "project"),), ("title", "content")),
    "notebook": Kb((("user",),)),
    "folder": Kb((("user", "workspace"),)),
    "document": Kb((("folder", "project", "workspace", "user"),), ("title", "content")),
    "file": Kb((("folder", "project", "user", "document"),), ("name", "url")),
    "campaign": Kb((("mailing list", "list", "segment", "audience", "account"),), ("subject", "sent at")),
    "subscription": Kb((("customer", "user", "subscriber", "member"), ("plan", "membership plan", "product")), ("status", "start date")),
    "membership": Kb((("member", "user"), ("plan", "membership plan", "club", "gym"))),
    "member": Kb((("team", "club", "plan", "membership plan", "group", "organization"),), ("name", "email")),
    "player": Kb((("team", "club"),), ("name", "position")),
    "match": Kb((("tournament", "league", "season"),)),
    "user": Kb((("team", "organization", "company", "account", "tenant"),), ("name", "email")),
    "profile": Kb((("user", "member", "customer", "employee"),), ("bio",)),
    "author": Kb((), ("name", "email")),
    "customer": Kb((), ("name", "email")),
    "student": Kb((("school", "class", "group"),), ("name", "email")),
    "patient": Kb((("doctor", "clinic"),), ("name", "date of birth")),
    "doctor": Kb((("clinic", "hospital", "department"),), ("name", "specialty")),
    "category": Kb((), ("name",)),
    "tag": Kb((), ("name",)),
    "label": Kb((("project", "repository", "board"),), ("name", "color")),
    "venue": Kb((), ("name", "address", "capacity")),
    "hotel": Kb((), ("name", "address")),
    "restaurant": Kb((), ("name", "address")),
    "company": Kb((), ("name", "website")),
    "client": Kb((), ("name", "email")),
    "guest": Kb((), ("name", "email")),
    "team": Kb((("organization", "company", "league", "club"),), ("name",)),
    "warehouse": Kb((), ("name", "location")),
    "course": Kb((("teacher", "instructor", "department", "school"),), ("title", "description")),
    "class": Kb((("course", "teacher", "instructor", "school"),)),
    "car": Kb((("owner", "location", "branch", "dealer"),), ("make", "model", "year")),
    "podcast": Kb((("host", "creator", "user"),), ("title", "description")),
    "artist": Kb((), ("name",)),
    "board": Kb((("workspace", "forum", "team", "project"),), ("name",)),
    "forum": Kb((), ("name",)),
    "ingredient": Kb((), ("name",)),
    "genre": Kb((), ("name",)),
    "skill": Kb((), ("name",)),
    "vehicle": Kb((("owner", "driver", "customer", "fleet"),), ("make", "model", "plate")),
    "trip": Kb((("driver", "vehicle"), ("passenger", "rider", "user", "customer"))),
    "delivery": Kb((("order",), ("driver", "courier"))),
    "pet": Kb((("owner", "customer", "client", "user"),), ("name", "species")),
    "donation": Kb((("campaign", "cause", "project", "charity"), ("donor", "user", "supporter")), ("amount",)),
    "bid": Kb((("auction", "listing", "item", "lot"), ("bidder", "user", "buyer")), ("amount",)),
    "habit": Kb((("user",),), ("name", "frequency")),
    "entry": Kb((("habit", "journal", "user", "log"),), ("date",)),
    "goal": Kb((("user", "project", "team"),), ("title", "target date")),
    "shift": Kb((("employee", "worker", "staff", "volunteer"), ("location", "store", "department"))),
    "grade": Kb((("student",), ("course", "assignment", "exam"))),
    "assignment": Kb((("course", "class", "lesson"),), ("title", "due date")),
    "submission": Kb((("assignment", "exam", "task"), ("student", "user"))),
    "vote": Kb((("poll", "option", "post", "proposal", "election"), ("user", "member", "voter"))),
    "option": Kb((("poll", "question"),)),
    "poll": Kb((("user", "group"),)),
    "slot": Kb((("calendar", "provider", "doctor", "room", "venue", "coach"),)),
    "time slot": Kb((("calendar", "provider", "doctor", "room", "venue", "coach", "restaurant"),)),
}
# Pairs (sorted) that a careful engineer links many-to-many unless told otherwise.
MANY_TO_MANY = {
    tuple(sorted(p.split("/")))
    for p in (
        "post/tag article/tag photo/tag recipe/ingredient recipe/tag product/tag task/tag issue/label "
        "task/label note/tag movie/genre movie/actor book/genre student/course playlist/song playlist/track "
        "user/skill candidate/skill job/skill project/member user/group user/role course/student "
        "product/order listener/podcast subscriber/podcast subscriber/mailing list subscriber/list "
        "event/attendee user/badge doctor/specialty team/player? team/user team/member artist/genre "
        "album/genre song/genre event/speaker question/tag video/tag contact/tag customer/tag"
    ).split()
    if "?" not in p
}
# People a thing has as members: each of them can be in many ("clubs have members").
MEMBERS = _set("member subscriber participant follower")
LABELS = _set("tag label genre skill badge keyword topic category_")

# How a verb links its subject (s) and object (o).
CREATE_VERBS = _set(
    "write create post publish place submit upload own log record open raise host send launch register result put "
    "produce generate lead "
    "teach sell list offer issue add leave give run manage start make author draft schedule plan build "
    "set file report design invoice lend compose collect"
)
PICK_VERBS = _set(
    "choose select pick use belong join follow like favorite bookmark save subscribe attend enroll enrol "
    "apply watch star upvote vote rate work live report_ visit reference contain include cover support "
    "play have sponsor"
)
TRANSACTIONS: dict[str, tuple[str, ...]] = {
    "book": ("booking", "reservation"), "reserve": ("reservation", "booking"), "rent": ("rental", "booking"),
    "borrow": ("loan", "borrowing", "checkout"), "lend": ("loan",), "buy": ("order", "purchase"),
    "purchase": ("order", "purchase"), "order": ("order",), "enroll": ("enrollment", "registration"),
    "enrol": ("enrollment", "enrolment", "registration"), "attend": ("attendance", "registration", "ticket"),
    "apply": ("application",), "hire": ("contract", "hire"), "visit": ("visit", "check in"),
    "register": ("registration",), "subscribe": ("subscription",), "donate": ("donation",), "bid": ("bid",),
    "vote": ("vote",), "review": ("review",), "rate": ("rating", "review"), "like": ("like",),
    "follow": ("follow",),
}
# Verbs whose subject and object pair up freely, both ways (many-to-many, or through a join entity).
SYMMETRIC_VERBS = _set(
    "join follow attend enroll enrol register subscribe share like tag play use install visit cite "
    "co-author coauthor meet sponsor support speak teach learn study favorite bookmark star watch"
)
# Verbs that put a person on something ("crews are assigned to jobs": the job gets a crew).
PLACE_VERBS = _set("assign allocate appoint schedule staff book delegate attach roster rota")
# Verbs that make someone a member ("members are added to boards", "students belong to classes").
JOIN_VERBS = _set("add invite join belong enroll enrol register subscribe admit appear participate compete volunteer enter "
                  "sing dance perform speak race")
# "a quote becomes a job": the job comes from the quote.
BECOME_VERBS = _set("become turn convert")
# Phrasal verbs, as the verb they mean: "check out samples" is borrowing them.
PHRASAL = {("check", "out"): "borrow", ("sign", "up"): "register", ("pick", "up"): "collect",
           ("drop", "off"): "deliver", ("fill", "out"): "submit", ("hand", "in"): "submit",
           ("look", "up"): "find", ("set", "up"): "create", ("result", "in"): "produce",
           ("bring", "in"): "bring", ("take", "out"): "borrow", ("log", "in"): "visit",
           ("make", "up"): "make_up"}
# Verbs whose subject is the parts of their object: "participants form teams", "patrols make up a troop".
PART_VERBS = _set("make_up form constitute")
UNIQUE_GOODS = _set("ticket seat license licence voucher gift_card subscription pass")
VERB_ROLES = {"write": "author", "author": "author", "own": "owner", "assign": "assignee", "host": "host",
              "organize": "organizer", "organise": "organizer", "report": "reporter"}
# A verb's role names the link only when the subject is a generic person ("users write posts" -> author),
# not when the subject already says who ("doctors write prescriptions" -> doctorId).
GENERIC_PERSONS = _set("user member person account profile")


# -- What kind of thing an entity is, from its name alone (issue 20) -----------------------------
# The structural rules ask two questions of any entity, also of one no table here names:
# is it a person (an actor: who does things), and is it an event (a record of something done,
# which belongs to whoever did it and to what it was done to)?

# People and groups of people that act: "crews are assigned to jobs", "bands book sessions".
AGENT_GROUPS = _set("crew band staff committee panel jury household family couple")
MORE_PERSONS = _set("judge scout dj ranger guide pilot chef cook nurse guard coach umpire dentist surgeon "
                    "keeper pharmacist janitor cleaner mechanic electrician plumber tailor barber stylist "
                    "pupil patron mentee apprentice intern kid teen adult senior citizen neighbor neighbour "
                    "clerk nanny sitter fan spectator athlete hiker")
# Endings of things that look like agents ("an amplifier", "a thermometer").
THING_SUFFIXES = ("ifier", "meter", "izer", "iser", "ware")
# Words with an agent suffix that are things, not people ("a freezer", "an order").
THING_AGENTS = _set(
    "order folder freezer container meter server computer printer trailer sticker poster counter filter "
    "letter number paper water chapter quarter register calendar cover center centre border banner answer "
    "corner pointer layer tier matter hour tower cellar collar ladder locker shelter theater theatre "
    "parameter character voucher charger scooter helicopter tractor sensor motor elevator monitor "
    "indicator reactor detector generator radiator processor conductor vector factor error mirror "
    "floor door color colour flavor flavour labor labour favor favour honor honour rumor humor "
    "harbor harbour calculator incubator accelerator weather feather leather finger "
    "dinner summer winter semester trimester barrier lever liter litre "
    "filler binder planner tracker reminder header footer trailer corridor "
    "anchor cursor compressor interior exterior mirror quarter blender mixer heater cooler scanner router "
    "timer holder drawer burner boiler controller adapter shaker charger marker stapler"
)
AGENT_SUFFIXES = ("er", "or", "ist", "ian", "ant", "ent", "ee", "eer")
NOT_AGENTS = _set(
    "event content comment component moment "
    "payment segment document department apartment equipment assignment appointment shipment element "
    "statement treatment investment environment experiment instrument amendment settlement agreement "
    "fragment garment ointment tournament parliament current percent accent talent "
    "restaurant plant grant warrant variant constant instant "
    " pendant elephant giant "
    "fee coffee "
    "guarantee jubilee degree tree knee spree decree marquee toffee thee see glee"
)
# Records of something done: they link to who did it and to what it was done to.
EVENTS = _set(
    "booking reservation order rental loan checkout appointment session visit enrollment enrolment ticket "
    "registration subscription application submission request claim report review rating vote like comment "
    "reply message payment donation pledge bid offer purchase sale transaction transfer shipment delivery "
    "pickup trip ride attempt result score reading measurement scan sighting observation inspection feeding "
    "planting harvest entry log record check_in checkin attendance assignment lease contract invoice quote "
    "estimate play game match completion response answer signup sign_up follow membership meeting "
    "interview audition performance screening hearing consultation treatment vaccination dose "
    "booking_request move transfer swap trade exchange"
)
_EVENT_SUFFIXES = ("ment", "tion", "sion", "ance", "ence", "ing", "al", "ure")
_NOT_EVENTS = _set(
    "department equipment tournament experiment document apartment element instrument statement "
    "environment component segment garment fragment parliament investment agreement settlement moment "
    "building painting wedding setting clothing ceiling string thing king ring wing spring morning evening "
    "meaning pudding stuffing icing animal hospital capital journal portal terminal "
    "material signal festival manual interval total principal individual original metal pedal "
    "tutorial editorial mammal crystal petal medal canal cathedral jackal local rival goal opal "
    "nation station ration fiction section portion option question location position mission version "
    "collection solution institution organization foundation population region religion "
    "lotion potion motion notion caption edition addition function emotion vacation destination "
    "occupation generation nutrition tuition ambition distance balance "
    "ambulance insurance allowance appliance finance alliance audience science residence "
    "conference sentence sequence evidence experience fence defence defense difference "
    " structure furniture feature culture nature picture literature creature signature "
    "temperature mixture sculpture texture gesture fixture lecture adventure brochure measure "
    "pleasure treasure pressure exposure closure figure future venture"
)


def head_word(name: str) -> str:
    """The last word of an entity name, lowercase: ``RepairOrder`` -> ``order``."""
    from hubbub.dsl.text import words # (text imports nothing from here)

    parts = words(name)
    return parts[-1] if parts else ""


def is_person(name: str) -> bool:
    """An actor: a person noun ("tenant"), a role, an agent noun ("keeper", "pharmacist"), a crew."""
    w = head_word(name)
    if w in PERSONS or w in ROLES or w in AGENT_GROUPS or w in MORE_PERSONS:
        return True
    if w in THING_AGENTS or w in NOT_AGENTS or len(w) < 5 or w.endswith(THING_SUFFIXES + ("ment",)):
        return False  # "-ment" names a thing or an act, never a person ("a requirement")
    return w.endswith(AGENT_SUFFIXES)


def is_event(name: str) -> bool:
    """A record of something done ("booking", "reading", "enrollment", "vote"), by name alone."""
    w = head_word(name)
    if w in EVENTS:
        return True
    if w in _NOT_EVENTS or is_person(name) or len(w) < 6:
        return False
    from hubbub.dsl.lexicon import verb_base # (the lexicon imports nothing from here)

    for suffix in _EVENT_SUFFIXES:
        if w.endswith(suffix):
            stem = w[: -len(suffix)]
            # a noun made from a verb the lexicon knows: rent-al, inspect-ion, book-ing, feed-ing
            if any(verb_base(s) for s in (stem, stem + "e", stem[:-1] if stem[-1:] == stem[-2:-1] else stem)):
                return True
    return False
