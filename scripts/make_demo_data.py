#!/usr/bin/env python3
"""Generate the demo data sets of the Product Owner program, deterministically.

Writes three JSONL files (one JSON object per line, sorted by id):

    train.jsonl   60 examples with reference outputs
    val.jsonl     34 examples with reference outputs
    pool.jsonl   520 inputs without outputs

Every record has, in this order: id, domain, concept, requirements_yaml, existing_vision
and, for train/val, product_vision and product_owner_review. Concepts are unique across
all three files, so train, val and pool never share a product.

The records are assembled from per-domain pools of users, jobs, problems,
differentiators, outcomes and capabilities (each capability with its acceptance
criteria), with one random.Random(SEED). Nothing depends on the clock or on set/hash
order, so two runs give byte-identical files.

Reference outputs are written to be good answers: plain ASCII prose in the characters
the local engine's grammar allows (pipeline/providers/structure.py), within the
engine's default per-field bounds (700 characters of vision, 450 of review), citing
every requirement id, and evolving the existing vision when there is one. Before any
file is written, every record is checked (YAML parses with yaml.safe_load into the
expected shape, lengths, ids, verdict line, bullets, repetition); a failed check aborts.

Usage:
    python scripts/make_demo_data.py              # write pipeline/demo_data/
    python scripts/make_demo_data.py --out DIR    # write elsewhere
    python scripts/make_demo_data.py --check      # exit 1 if the files on disk differ

Standard library only; PyYAML is used for the self-check when it is installed.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
from pathlib import Path

SEED = 20261125
REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / "pipeline" / "demo_data"

# (split, number of records, with reference outputs)
SPLITS = (("train", 60, True), ("val", 34, True), ("pool", 520, False))
EMPTY_VISION_SHARE = 0.30  # share of records with existing_vision == ""
CHANGES_SHARE = 0.30  # share of train/val reviews with "Verdict: Changes requested"

# Bounds the references must respect (brief + the local engine's defaults).
VISION_WORDS = (60, 180)
REVIEW_WORDS = (30, 140)
VISION_MAX_CHARS = 700  # [providers.local.max_chars] product_vision
REVIEW_MAX_CHARS = 450  # [providers.local.max_chars] product_owner_review
ALLOWED_CHARS = re.compile(r"^[A-Za-z0-9 \n.,;:!?'\"()/%&+*=_@$-]*$")  # structure.TEXT_CHARS
FIRST_CHARS = re.compile(r"^[A-Za-z0-9\"(]")  # structure.FIRST_CHAR
FORBIDDEN = set("[]{}<>`#|\\")

# ---------------------------------------------------------------------------------------
# Content pools
# ---------------------------------------------------------------------------------------
# Per domain: a slug, 2-4 letter requirement-id prefixes, capabilities as (title, three
# acceptance criteria) pairs, and the titles of the capabilities that fit every persona of
# the domain ("shared"). Requirements are drawn from these.

DOMAINS: list[dict] = [
    {
        "slug": "fintech",
        "shared": ["Two-factor sign-in", "Monthly cash summary"],
        "prefixes": ["PAY", "FIN", "LEDG", "CASH"],
        "caps": [
            ("Connect bank accounts", [
                "Accounts from at least 5 major banks can be linked via open banking",
                "Transactions sync at least every 4 hours",
                "A broken connection is shown to the user with a reconnect link",
            ]),
            ("Match payouts to deposits", [
                "At least 95% of card payouts are matched without user input",
                "Unmatched items appear in a review queue",
                "Each match shows the rule that produced it",
            ]),
            ("Forecast weekly cash position", [
                "The forecast covers the next 13 weeks",
                "Recurring bills and payroll are detected automatically",
                "Users can add a one-off expense and see the forecast update",
            ]),
            ("Send invoice reminders", [
                "Reminders go out 3 days before and 7 days after the due date",
                "Each reminder includes a payment link",
                "Customers can opt out of reminders",
            ]),
            ("Categorize transactions", [
                "New transactions receive a category suggestion",
                "Corrected categories are remembered for similar transactions",
                "Category rules can be exported as CSV",
            ]),
            ("Show multi-currency balances", [
                "Balances are shown in the home currency using the daily rate",
                "The exchange rate source and date are visible",
                "Rounding differences under 0.01 are not reported as mismatches",
            ]),
            ("Export to accounting software", [
                "Journal entries export to at least 2 accounting packages",
                "An export never duplicates entries already sent",
                "Failed exports are listed with the reason",
            ]),
            ("Keep an audit trail of changes", [
                "Every edit to a transaction records who changed it and when",
                "The audit trail can be filtered by date range",
                "Audit records cannot be deleted by regular users",
            ]),
            ("Shared group ledger", [
                "Every member sees contributions and expenses in one ledger",
                "Expenses can be split equally or by custom shares",
                "Members are notified of new expenses within 1 minute",
            ]),
            ("Two-factor sign-in", [
                "Every sign-in requires a second factor",
                "Sessions expire after 30 minutes of inactivity",
                "Failed sign-in attempts are rate-limited",
            ]),
            ("Monthly cash summary", [
                "A monthly summary is emailed on the first working day",
                "The summary lists the 5 largest changes",
                "Users can choose which accounts are included",
            ]),
        ],
    },
    {
        "slug": "healthcare-scheduling",
        "shared": ["Patient contact preferences", "Access roles for clinic staff"],
        "prefixes": ["APPT", "SCH", "CLIN"],
        "caps": [
            ("Online self-booking", [
                "Patients can book any open slot for their visit type from a phone browser",
                "Booking requires no more than 4 steps",
                "Double bookings are prevented even under concurrent requests",
            ]),
            ("Cancellation waitlist", [
                "A freed slot is offered to waitlisted patients within 5 minutes",
                "The first patient to accept gets the slot",
                "Patients who decline stay on the waitlist",
            ]),
            ("Appointment reminders", [
                "Reminders are sent by SMS 48 hours and 2 hours before the visit",
                "Patients can confirm or cancel by replying to the message",
                "Reminder text is available in at least 3 languages",
            ]),
            ("Roster planning", [
                "The roster view shows every clinician across all sites for a week",
                "Leave requests block the affected slots automatically",
                "A warning appears when a site has no qualified clinician on shift",
            ]),
            ("Room and equipment matching", [
                "Visit types can require a specific room or device",
                "A booking is refused if the required equipment is already in use",
                "Room usage can be reported per day",
            ]),
            ("EHR integration", [
                "Booked appointments appear in the health record within 1 minute",
                "Patient demographics are read from the record, not retyped",
                "Sync errors are logged and shown to the practice manager",
            ]),
            ("Follow-up booking at checkout", [
                "Staff can book a follow-up from the visit summary screen",
                "Suggested follow-up dates follow the clinician's protocol",
                "Patients receive the follow-up details by email or SMS",
            ]),
            ("No-show reporting", [
                "No-show rates are reported per clinician, site and visit type",
                "Reports can be exported as CSV",
                "Trends are shown for the last 12 months",
            ]),
            ("Patient contact preferences", [
                "Patients choose SMS, email or phone for each message type",
                "Preferences are respected by every reminder and offer",
                "Changes take effect within 1 minute",
            ]),
            ("Access roles for clinic staff", [
                "Reception, clinician and manager roles see different data",
                "Clinical notes are never shown to reception",
                "Role changes are logged",
            ]),
        ],
    },
    {
        "slug": "logistics",
        "shared": ["Shipment search", "Daily operations report"],
        "prefixes": ["SHIP", "FLT", "LOG", "DOCK"],
        "caps": [
            ("Optimize daily routes", [
                "Routes for 50 vehicles and 1,000 stops are planned in under 2 minutes",
                "Delivery time windows are respected",
                "Dispatchers can lock a stop to a specific driver",
            ]),
            ("Dock slot booking", [
                "Carriers can book a 30-minute dock slot online",
                "A dock cannot be overbooked",
                "A late truck's slot is released after 20 minutes",
            ]),
            ("Live ETA for recipients", [
                "Recipients receive a tracking link when the driver starts the route",
                "The ETA updates at least every 5 minutes",
                "The link expires 24 hours after delivery",
            ]),
            ("Electronic proof of delivery", [
                "Drivers capture a signature or photo at each stop",
                "Proof of delivery reaches the office within 1 minute",
                "Capture works offline and uploads when coverage returns",
            ]),
            ("Driver mobile app", [
                "The app runs on Android and iOS phones released in the last 5 years",
                "Drivers see the next stop with navigation in one tap",
                "Battery use stays below 10% per hour",
            ]),
            ("Exception alerts", [
                "Dispatchers are alerted when a driver is more than 15 minutes behind plan",
                "Failed deliveries require a reason code",
                "Alerts can be acknowledged and assigned",
            ]),
            ("Fleet utilization reporting", [
                "Reports show miles, stops and idle time per vehicle",
                "Data can be filtered by depot and week",
                "Reports refresh nightly",
            ]),
            ("Carrier rate comparison", [
                "Quotes from at least 3 carriers are shown side by side",
                "Quotes include fuel surcharges",
                "The selected quote is saved with the shipment",
            ]),
            ("Gate check-in", [
                "Drivers check in at the gate by scanning a QR code",
                "Shift leads see arriving trucks on one board",
                "Trucks arriving more than 30 minutes early are held in a buffer queue",
            ]),
            ("Yard overview", [
                "The yard map shows every trailer and its dock door",
                "Trailers waiting more than 2 hours are highlighted",
                "Moves can be assigned to a yard driver",
            ]),
            ("Shipment search", [
                "Any shipment can be found by reference, postcode or customer",
                "Search returns results in under 2 seconds",
                "Results show the latest status and location",
            ]),
            ("Daily operations report", [
                "A report of deliveries, delays and exceptions is sent at 6 pm",
                "The report compares the day with the weekly average",
                "Reports can be shared with customers",
            ]),
        ],
    },
    {
        "slug": "edtech",
        "shared": ["Student privacy controls", "Progress notifications"],
        "prefixes": ["EDU", "LRN", "CLS"],
        "caps": [
            ("Adaptive practice sets", [
                "Each practice set adjusts difficulty after every answer",
                "At least 500 questions are tagged by topic at launch",
                "Learners see which topic each question trains",
            ]),
            ("Class progress dashboard", [
                "Teachers see mastery per student and topic on one screen",
                "Students below 60% mastery are highlighted",
                "The dashboard loads in under 3 seconds for a class of 35",
            ]),
            ("Rubric-based grading assistant", [
                "Suggested grades cite the rubric criterion they rely on",
                "Teachers can accept or override each suggestion",
                "Overrides are used to improve later suggestions",
            ]),
            ("Curriculum mapping", [
                "Every activity is linked to at least one curriculum standard",
                "Teachers can filter activities by standard",
                "Coverage gaps per term are reported",
            ]),
            ("Offline mode", [
                "Downloaded lessons work without a connection",
                "Answers sync when the device reconnects",
                "Sync conflicts never lose a student's answer",
            ]),
            ("Parent progress reports", [
                "Parents receive a weekly summary by email",
                "Reports use plain language without internal scores",
                "Parents can unsubscribe at any time",
            ]),
            ("Lesson planner", [
                "Teachers can drag activities into a weekly plan",
                "Plans can be shared with colleagues in the same school",
                "A plan can be copied to the next term",
            ]),
            ("Exam readiness estimate", [
                "Learners see an estimated readiness score per exam section",
                "The estimate explains which topics lower it",
                "The estimate updates after each practice session",
            ]),
            ("Study plan", [
                "Learners set an exam date and weekly hours",
                "The plan schedules topics until the exam date",
                "Missed sessions are rescheduled automatically",
            ]),
            ("Plagiarism similarity check", [
                "Each answer is compared with other submissions in the course",
                "Similarity above 80% is flagged for review",
                "Flags never change a grade automatically",
            ]),
            ("Grade export", [
                "Final grades export to the university learning platform",
                "Exports include rubric scores per criterion",
                "Exports can be repeated without duplicating grades",
            ]),
            ("Student privacy controls", [
                "Student data is visible only to their teachers and guardians",
                "Data can be deleted on request within 30 days",
                "No student data is used for advertising",
            ]),
            ("Progress notifications", [
                "Learners get a weekly summary of progress",
                "Notifications can be switched off per channel",
                "Quiet hours are respected",
            ]),
        ],
    },
    {
        "slug": "agritech",
        "shared": ["Weather data feed", "Field map"],
        "prefixes": ["FARM", "AGR", "CROP", "SOIL"],
        "caps": [
            ("Import soil sensor readings", [
                "Readings from at least 3 sensor vendors are imported every 15 minutes",
                "A failed import is retried and reported to the co-op manager",
                "Readings outside the physical range are flagged as faulty",
            ]),
            ("Irrigation schedule recommendations", [
                "A recommended schedule is produced for each plot every morning",
                "Recommendations account for the 3-day rain forecast",
                "Growers can accept or adjust the schedule",
            ]),
            ("Disease detection from photos", [
                "Growers can upload a leaf photo from a phone",
                "A likely disease and confidence are returned within 30 seconds",
                "Low-confidence results are routed to an agronomist",
            ]),
            ("Plot planning calendar", [
                "Planting and harvest dates are shown per plot on one calendar",
                "Crop rotation conflicts are highlighted",
                "The calendar can be printed for field teams",
            ]),
            ("Fertilizer logbook", [
                "Each application records product, amount and plot",
                "Seasonal totals per field are calculated automatically",
                "The log exports in the format required by the regional authority",
            ]),
            ("SMS advisories", [
                "Advice can be sent as SMS in at least 2 local languages",
                "Growers can reply to ask for a call back",
                "Messages are limited to 2 per day per grower",
            ]),
            ("Offline field data capture", [
                "Observations can be recorded without a connection",
                "Data syncs automatically when coverage returns",
                "Photos are compressed to under 500 KB before upload",
            ]),
            ("Co-op benchmarking", [
                "Each grower sees their water use compared with the co-op median",
                "Individual farm data is never shown to other members",
                "Benchmarks update weekly",
            ]),
            ("Weather data feed", [
                "Local forecasts are refreshed every 3 hours",
                "Frost and heat warnings are highlighted",
                "The forecast source and time are shown",
            ]),
            ("Field map", [
                "Plots are drawn on a satellite map",
                "Each plot shows crop and area",
                "Maps work on low-end phones",
            ]),
        ],
    },
    {
        "slug": "hr",
        "shared": ["Employee self-service profile", "Role-based HR access"],
        "prefixes": ["HR", "PPL", "TAL"],
        "caps": [
            ("Onboarding checklists", [
                "A checklist is generated from the role, team and country",
                "Each task has an owner and a due date",
                "Overdue tasks are flagged to HR after 2 days",
            ]),
            ("Anonymous first-round screening", [
                "Names, photos and ages are hidden in the first round",
                "Reviewers score against the same 5 criteria",
                "Hidden fields are revealed only after shortlisting",
            ]),
            ("Interview scheduling", [
                "Candidates pick from slots that fit every panel member",
                "Calendar invites are sent automatically",
                "Rescheduling needs no more than 2 clicks",
            ]),
            ("Structured review forms", [
                "Review forms use the competencies defined for the role",
                "Managers can see the employee's self-review before writing theirs",
                "Drafts are saved automatically",
            ]),
            ("Leave tracking", [
                "Leave balances follow the rules of each employee's country",
                "Requests are approved or rejected in the chat tool",
                "Payroll receives approved leave before the monthly cutoff",
            ]),
            ("Document e-signature", [
                "Contracts can be signed electronically",
                "Signed documents are stored in the employee file",
                "Unsigned documents trigger a reminder after 3 days",
            ]),
            ("Headcount reporting", [
                "Headcount is reported by team, location and contract type",
                "Reports show joiners and leavers per month",
                "Access is limited to HR and finance roles",
            ]),
            ("Manager nudges", [
                "Managers receive reminders in the team chat tool",
                "Reminders stop once the task is done",
                "Managers can snooze a reminder for 1 day",
            ]),
            ("Employee self-service profile", [
                "Employees can update address and bank details",
                "Changes to bank details require a second confirmation",
                "HR is notified of every change",
            ]),
            ("Role-based HR access", [
                "Managers see only their own team",
                "Salary data is visible only to HR and finance",
                "Access changes are logged",
            ]),
        ],
    },
    {
        "slug": "retail",
        "shared": ["Multi-store view", "Low stock alerts"],
        "prefixes": ["SHOP", "RTL", "INV", "POS"],
        "caps": [
            ("Point-of-sale integration", [
                "Sales from at least 3 common POS systems are imported",
                "New sales appear within 1 minute",
                "Refunds adjust stock levels automatically",
            ]),
            ("Reorder suggestions", [
                "Suggestions consider lead time and the last 8 weeks of sales",
                "Buyers can approve a purchase order in one step",
                "Suggestions can be overridden with a note",
            ]),
            ("Online stock sync", [
                "Stock levels sync to the online store within 30 seconds",
                "Items at zero stock are hidden online",
                "Sync failures are shown on the dashboard",
            ]),
            ("Promotion planner", [
                "Buyers can choose products and a discount for a date range",
                "Expected margin impact is shown before launch",
                "Results are compared with a similar period",
            ]),
            ("Basket analysis", [
                "Product pairs bought together are listed weekly",
                "Results can be filtered by store",
                "Pairs with fewer than 20 baskets are excluded",
            ]),
            ("Supplier catalogue import", [
                "Supplier price lists can be imported from CSV",
                "Price changes are highlighted",
                "Duplicate products are merged by barcode",
            ]),
            ("Stock count on mobile", [
                "Staff can count stock by scanning barcodes with a phone",
                "Counts can be paused and resumed",
                "Differences above 5% require a second count",
            ]),
            ("Sales dashboard", [
                "Daily sales, margin and stock value are shown per store",
                "The dashboard refreshes every hour",
                "Figures can be exported to a spreadsheet",
            ]),
            ("Multi-store view", [
                "Stock and sales can be viewed per store or for all stores",
                "Transfers between stores can be suggested",
                "Store managers see only their own store",
            ]),
            ("Low stock alerts", [
                "An alert is sent when an item falls below its minimum",
                "Alerts are grouped into one daily message",
                "Minimums can be set per store",
            ]),
        ],
    },
    {
        "slug": "energy",
        "shared": ["Monthly energy report", "Tariff import"],
        "prefixes": ["NRG", "GRID", "PWR", "SOL"],
        "caps": [
            ("Smart meter data import", [
                "Interval data is imported every 15 minutes",
                "Gaps in meter data are flagged",
                "At least 2 years of history are stored",
            ]),
            ("Tariff-aware scheduling", [
                "Schedules shift flexible loads to the cheapest hours",
                "Users can set comfort limits that schedules never break",
                "Tariff changes are picked up within 1 day",
            ]),
            ("Overnight waste report", [
                "Consumption outside working hours is reported per building",
                "The top 5 wasting circuits are listed",
                "Reports are emailed every Monday",
            ]),
            ("Solar credit allocation", [
                "Credits are split by the share each member holds",
                "Members can see their monthly credit statement",
                "Allocation rules are visible to all members",
            ]),
            ("Battery charge planning", [
                "A charge plan is produced for the next 24 hours",
                "The plan uses the day-ahead solar forecast",
                "Manual overrides last until the next plan",
            ]),
            ("Device control", [
                "Compatible thermostats and EV chargers can be controlled remotely",
                "Every command is logged",
                "A failed command is retried once and then reported",
            ]),
            ("Peak demand alerts", [
                "An alert is sent when demand approaches the contracted peak",
                "Alerts go to email and SMS",
                "Alert thresholds can be set per site",
            ]),
            ("Carbon reporting", [
                "Emissions are estimated from consumption and grid mix",
                "Reports follow a recognised reporting method",
                "Reports can be exported as PDF",
            ]),
            ("Monthly energy report", [
                "A report of consumption and cost is emailed monthly",
                "The report compares with the same month last year",
                "Reports can be exported as PDF",
            ]),
            ("Tariff import", [
                "Tariffs from at least 10 suppliers are available",
                "Custom tariffs can be entered by hand",
                "Tariff changes take effect from the stated date",
            ]),
        ],
    },
    {
        "slug": "legal",
        "shared": ["Document version history", "Secure external sharing"],
        "prefixes": ["LEX", "LAW", "CASE"],
        "caps": [
            ("Contract clause comparison", [
                "Uploaded contracts are split into clauses",
                "Clauses that deviate from the playbook are highlighted with the playbook position",
                "Reviewers can accept a deviation with a comment",
            ]),
            ("Deadline calculator", [
                "Deadlines are calculated from the filing date and court rules",
                "Court holidays are taken into account",
                "Each deadline has an owner and a reminder 5 days before",
            ]),
            ("Client intake form", [
                "Clients can submit their matter through a guided online form",
                "Conflict checks run before a matter is accepted",
                "Urgent matters are flagged to the duty lawyer",
            ]),
            ("Hearing bundle builder", [
                "Selected documents are merged into one indexed PDF",
                "Pages are numbered consistently",
                "The index links to each document",
            ]),
            ("Matter dashboard", [
                "Each matter shows parties, deadlines and documents on one page",
                "The dashboard can be filtered by lawyer",
                "Closed matters are archived after 30 days",
            ]),
            ("Secure client portal", [
                "Clients can upload documents securely",
                "Files are encrypted at rest",
                "Access is revoked when a matter closes",
            ]),
            ("Time recording", [
                "Time can be recorded per matter from the dashboard",
                "Entries are rounded to 6 minutes",
                "Unbilled time is reported weekly",
            ]),
            ("Template library", [
                "Approved templates are stored with version history",
                "Only partners can publish a new template version",
                "Templates can be filled from matter data",
            ]),
            ("Contract approval workflow", [
                "Contracts above a set value need approval from finance",
                "Approvers can comment on specific clauses",
                "Approved contracts are stored with the approval history",
            ]),
            ("Document version history", [
                "Every document keeps its full version history",
                "Two versions can be compared side by side",
                "Restoring a version never deletes later ones",
            ]),
            ("Secure external sharing", [
                "Documents can be shared by expiring link",
                "Links can require a one-time code",
                "Every access is logged",
            ]),
        ],
    },
    {
        "slug": "travel",
        "shared": ["Booking changes and cancellations", "Trip documents wallet"],
        "prefixes": ["TRIP", "TRV", "BOOK"],
        "caps": [
            ("Policy-aware search", [
                "Search results show which options are within policy",
                "Out-of-policy choices require a reason",
                "Policy rules can differ by employee grade",
            ]),
            ("Package checkout", [
                "Tours and rooms can be paid in a single checkout",
                "Availability is confirmed before payment",
                "Confirmation is emailed within 1 minute",
            ]),
            ("Shared itinerary", [
                "All travellers in a group see the same itinerary",
                "Changes notify every traveller",
                "The itinerary is available offline",
            ]),
            ("Disruption alerts", [
                "Flight status is checked every 10 minutes",
                "Travellers are alerted to delays over 30 minutes",
                "Alternative flights are proposed with the alert",
            ]),
            ("Approval workflow", [
                "Managers can approve a trip from email or mobile",
                "Trips auto-approve if fully within policy",
                "Approval history is stored with the booking",
            ]),
            ("Budget tracking", [
                "Trip costs are compared with the budget in real time",
                "Overruns above 10% are flagged",
                "Budgets can be set per project",
            ]),
            ("Supplier inventory import", [
                "Operators can import tour availability from CSV",
                "Prices include taxes and fees",
                "Sold-out tours are hidden automatically",
            ]),
            ("Traveller profiles", [
                "Passport and loyalty details are stored securely",
                "Travellers can update their own profile",
                "Profiles are used to prefill bookings",
            ]),
            ("Tour availability calendar", [
                "Operators see bookings per tour and date on one calendar",
                "Capacity per departure is enforced",
                "Operators can block dates for private groups",
            ]),
            ("Booking changes and cancellations", [
                "Bookings can be changed or cancelled online",
                "Fees are shown before confirming a change",
                "Refunds are issued within 5 days",
            ]),
            ("Trip documents wallet", [
                "Tickets and vouchers are stored in one place",
                "Documents are available offline",
                "Documents are shared with everyone on the trip",
            ]),
        ],
    },
    {
        "slug": "insurance",
        "shared": ["Customer portal", "Premium payment options"],
        "prefixes": ["INS", "CLM", "POL"],
        "caps": [
            ("Claim intake", [
                "Customers can report a claim with photos from a phone",
                "A claim number is issued immediately",
                "Missing information is requested automatically",
            ]),
            ("Document extraction", [
                "Invoices and reports are read automatically",
                "Extracted fields show a confidence score",
                "Handlers confirm low-confidence fields before use",
            ]),
            ("Fast-track settlement", [
                "Claims under a set amount with complete documents are settled in 1 day",
                "Fraud checks run before payment",
                "Customers are notified of the decision by SMS",
            ]),
            ("Multi-insurer quoting", [
                "One client form produces quotes from at least 4 insurers",
                "Quotes are shown side by side with key exclusions",
                "Quotes expire after 30 days",
            ]),
            ("Plain-language cover summary", [
                "Each policy has a one-page summary",
                "Summaries include 3 worked examples of covered and uncovered events",
                "Summaries are reviewed by compliance before publishing",
            ]),
            ("Risk data enrichment", [
                "Applications are enriched with flood and crime data for the address",
                "Data sources are shown to the underwriter",
                "Enrichment completes within 10 seconds",
            ]),
            ("Renewal reminders", [
                "Clients are reminded 30 days before renewal",
                "Changes in premium are explained",
                "Brokers see upcoming renewals on a dashboard",
            ]),
            ("Claims audit log", [
                "Every decision records the handler and reason",
                "Audit logs are kept for 7 years",
                "Logs can be exported for regulators",
            ]),
            ("Client document vault", [
                "Clients upload ID and business documents once",
                "Documents are reused across insurer submissions",
                "Expired documents are flagged",
            ]),
            ("Referral rules", [
                "Applications outside appetite are referred to a senior underwriter",
                "Referral reasons are shown with the application",
                "Rules can be changed by the underwriting lead",
            ]),
            ("Customer portal", [
                "Customers see policies, documents and claims in one place",
                "Documents can be downloaded as PDF",
                "Customers can update contact details",
            ]),
            ("Premium payment options", [
                "Premiums can be paid monthly or yearly",
                "Failed payments trigger a reminder after 3 days",
                "Payment history is visible to the customer",
            ]),
        ],
    },
    {
        "slug": "public-sector",
        "shared": ["Accessible design", "Data retention rules"],
        "prefixes": ["GOV", "CIV", "PUB"],
        "caps": [
            ("Guided online application", [
                "Applicants see only the questions relevant to their situation",
                "Required documents are checked before submission",
                "The form meets WCAG 2.1 AA",
            ]),
            ("Caseworker queue", [
                "Cases are assigned by workload and skill",
                "Caseworkers see all documents for a case on one screen",
                "Cases waiting more than 10 days are escalated",
            ]),
            ("Status tracking for residents", [
                "Residents can see the status of their request online",
                "Each status change sends an email",
                "Status pages do not expose personal data",
            ]),
            ("Issue reporting with location", [
                "Residents can drop a pin on a map and add a photo",
                "Duplicate reports near the same spot are merged",
                "Reports are routed to the right department",
            ]),
            ("Tender publication", [
                "Tenders are published with all documents in one place",
                "Supplier questions and answers are visible to all bidders",
                "Bids are sealed until the deadline",
            ]),
            ("Decision audit trail", [
                "Every decision records the officer, rule and date",
                "Audit trails cannot be edited",
                "Auditors can export trails for a period",
            ]),
            ("Multilingual content", [
                "Forms are available in at least 3 languages",
                "Language can be switched without losing answers",
                "Translations are reviewed by a native speaker",
            ]),
            ("Performance reporting", [
                "Processing times are published monthly",
                "Reports break down by service type",
                "Open data is available as CSV",
            ]),
            ("Accessible design", [
                "All pages meet WCAG 2.1 AA",
                "Forms work with screen readers",
                "Pages are usable on a 5-year-old phone",
            ]),
            ("Data retention rules", [
                "Personal data is deleted after the statutory retention period",
                "Retention periods are set per record type",
                "Deletions are logged",
            ]),
        ],
    },
    {
        "slug": "gaming",
        "shared": ["Player privacy controls", "Studio dashboard"],
        "prefixes": ["GAME", "PLAY", "LVL"],
        "caps": [
            ("Engine SDK", [
                "The SDK supports at least 2 major game engines",
                "Integration takes less than 1 day for a typical project",
                "The SDK adds under 2 MB to the build",
            ]),
            ("Session heatmaps", [
                "Player deaths and exits are shown as heatmaps per level",
                "Data is anonymised before storage",
                "Heatmaps can be filtered by game version",
            ]),
            ("Real-time chat moderation", [
                "Toxic messages are hidden within 1 second",
                "Moderators can review and restore hidden messages",
                "Moderation works in at least 5 languages",
            ]),
            ("Live event experiments", [
                "Events can be split between 2 player groups",
                "Results show retention and revenue per group",
                "An experiment can be stopped instantly",
            ]),
            ("Tournament brackets", [
                "Brackets are generated from registered teams",
                "Match results update the bracket automatically",
                "Disputes can be raised by team captains",
            ]),
            ("Funnel analytics", [
                "The first-hour funnel is shown step by step",
                "Drop-off points are ranked",
                "Funnels compare game versions",
            ]),
            ("Player reports", [
                "Players can report others from the in-game menu",
                "Reports include the recent chat context",
                "Repeat offenders are flagged to moderators",
            ]),
            ("Live config updates", [
                "Game settings can be changed without a new build",
                "Changes can be rolled back in one click",
                "Every change is logged with the author",
            ]),
            ("Team registration", [
                "Teams register with a captain and up to 7 players",
                "Duplicate player accounts are rejected",
                "Registration closes automatically at the deadline",
            ]),
            ("Player privacy controls", [
                "Players can download or delete their data",
                "Analytics respect the opt-out of each player",
                "Data requests are completed within 30 days",
            ]),
            ("Studio dashboard", [
                "Key metrics are shown on one page per game",
                "Dashboards refresh every 15 minutes",
                "Dashboards can be shared with the team",
            ]),
        ],
    },
    {
        "slug": "media",
        "shared": ["Audience privacy controls", "Team roles and permissions"],
        "prefixes": ["NEWS", "MED", "PUBL"],
        "caps": [
            ("Story conversion tracking", [
                "Each story shows subscriptions started within 24 hours of reading",
                "Results can be compared by section",
                "Personal data is not shown to editors",
            ]),
            ("Automatic transcription", [
                "Episodes are transcribed within 15 minutes of upload",
                "Speakers are labelled",
                "Editors can correct the transcript inline",
            ]),
            ("Chapter markers", [
                "Chapters are suggested from the transcript",
                "Producers can edit chapter titles",
                "Chapters are included in the RSS feed",
            ]),
            ("Footage library", [
                "Clips are tagged with people, places and licence terms",
                "Search returns results in under 2 seconds",
                "Expired licences are flagged",
            ]),
            ("Churn risk scores", [
                "Each subscriber has a weekly churn risk score",
                "The top risk factors are listed",
                "At-risk segments can be exported to the email tool",
            ]),
            ("Newsletter builder", [
                "Editors can build a newsletter from recent stories",
                "Newsletters can be scheduled",
                "Open and click rates are reported",
            ]),
            ("Paywall rules", [
                "Editors can set which stories are free",
                "Metered limits can be changed without a deploy",
                "Rule changes are logged",
            ]),
            ("Audience dashboard", [
                "Daily readers, subscribers and churn are shown together",
                "Data refreshes every hour",
                "Dashboards can be shared with the whole newsroom",
            ]),
            ("Licence tracking", [
                "Each clip records licence owner, territory and expiry",
                "Clips with expired licences cannot be exported",
                "Licence renewals are requested 30 days before expiry",
            ]),
            ("Podcast feed publishing", [
                "Episodes publish to the main podcast directories from one upload",
                "Feed validation errors are shown before publishing",
                "Scheduled episodes go live at the set time",
            ]),
            ("Client review links", [
                "Clients can comment on a cut at a specific timecode",
                "Review links expire after 14 days",
                "Each comment can be marked resolved",
            ]),
            ("Audience privacy controls", [
                "Audiences can opt out of tracking",
                "Consent choices are stored for 12 months",
                "No personal data is shared with advertisers without consent",
            ]),
            ("Team roles and permissions", [
                "Editors, producers and admins have separate roles",
                "Only admins can change billing",
                "Role changes are logged",
            ]),
        ],
    },
    {
        "slug": "cybersecurity",
        "shared": ["Weekly security report", "Single sign-on"],
        "prefixes": ["SEC", "CYB", "SOC", "VULN"],
        "caps": [
            ("Vulnerability prioritisation", [
                "Findings are ranked by exploitability and asset criticality",
                "The top 10 actions are shown on the home page",
                "Ranking reasons are explained",
            ]),
            ("Alert correlation", [
                "Related alerts are grouped into one incident",
                "Grouping reduces alert volume by at least 50% in tests",
                "Analysts can split a wrongly grouped incident",
            ]),
            ("Audit evidence collection", [
                "Evidence is collected daily from connected cloud accounts",
                "Each control shows its latest evidence",
                "Evidence can be exported for auditors",
            ]),
            ("Phishing simulation", [
                "Admins can launch a simulated phishing campaign",
                "Staff who click receive short training",
                "Results are reported by department",
            ]),
            ("Asset inventory", [
                "Devices and cloud resources are discovered automatically",
                "Each asset has an owner",
                "Unknown assets are flagged within 1 day",
            ]),
            ("Incident timeline", [
                "Each incident shows events in time order",
                "Analysts can add notes",
                "Timelines can be exported as PDF",
            ]),
            ("Access review", [
                "Managers review user access quarterly",
                "Unused accounts are flagged after 90 days",
                "Review decisions are logged",
            ]),
            ("Ticketing integration", [
                "Incidents can create tickets in common ticketing tools",
                "Ticket status syncs back",
                "Duplicate tickets are avoided",
            ]),
            ("Weekly security report", [
                "A summary of risks and actions is emailed weekly",
                "The report shows trends over the last 12 weeks",
                "Reports can be shared with management as PDF",
            ]),
            ("Single sign-on", [
                "Users sign in with the company identity provider",
                "Accounts are removed when a user leaves the identity provider",
                "Admin actions require a second factor",
            ]),
        ],
    },
    {
        "slug": "real-estate",
        "shared": ["Digital document signing", "Messaging hub"],
        "prefixes": ["PROP", "RE", "RENT"],
        "caps": [
            ("Maintenance requests", [
                "Tenants can submit a request with photos",
                "Requests are assigned to a contractor within 1 working day",
                "Tenants see status updates",
            ]),
            ("Listing matching", [
                "Buyers receive listings ranked by fit",
                "Feedback on viewings updates the ranking",
                "Agents can see why a listing was suggested",
            ]),
            ("True cost estimate", [
                "Each home shows estimated monthly costs including taxes and utilities",
                "Commute time to a chosen address is shown",
                "Estimates show their data sources",
            ]),
            ("Viewing scheduler", [
                "Buyers can book viewings online",
                "Agents set their available hours",
                "Reminders are sent 2 hours before",
            ]),
            ("Rent collection", [
                "Rent is collected by direct debit",
                "Late payments trigger a reminder after 3 days",
                "Landlords see a monthly statement",
            ]),
            ("Desk booking", [
                "Members can book desks and rooms from a phone",
                "Unused bookings are released after 15 minutes",
                "Occupancy is shown live",
            ]),
            ("Lease document storage", [
                "Leases are stored with key dates extracted",
                "Renewal dates trigger reminders 60 days ahead",
                "Documents are accessible only to authorised staff",
            ]),
            ("Contractor directory", [
                "Contractors are listed with trade and rating",
                "Insurance certificates are checked before assignment",
                "Ratings come from completed jobs",
            ]),
            ("Offer tracking", [
                "Offers are recorded with amount, conditions and expiry",
                "Sellers are notified of a new offer within 1 hour",
                "Offer history is visible to the agent and seller",
            ]),
            ("Saved search alerts", [
                "Buyers can save a search with price and area filters",
                "New matching listings are sent within 1 hour",
                "Buyers can pause alerts",
            ]),
            ("Digital document signing", [
                "Leases and offers can be signed online",
                "Signed copies are sent to all parties",
                "Signatures are time-stamped",
            ]),
            ("Messaging hub", [
                "Messages between all parties are kept in one thread per property",
                "Attachments up to 20 MB are supported",
                "Notifications are sent by email and push",
            ]),
        ],
    },
    {
        "slug": "manufacturing",
        "shared": ["Shop floor tablets", "Production reports"],
        "prefixes": ["MFG", "MES", "QA", "PLNT"],
        "caps": [
            ("PLC data collection", [
                "Data is read from at least 3 PLC brands",
                "Readings are collected every second",
                "Connection loss is alarmed within 1 minute",
            ]),
            ("Failure prediction", [
                "Warnings are raised at least 24 hours before a predicted failure",
                "Each warning lists the sensor trends behind it",
                "False alarms can be marked to improve the model",
            ]),
            ("Unit traceability", [
                "Each unit is linked to batch, machine and operator",
                "Trace queries return results in under 5 seconds",
                "Trace data is kept for 10 years",
            ]),
            ("Root cause analysis", [
                "Defects can be grouped by machine, shift and material",
                "The top contributing factors are ranked",
                "Findings can be shared as a report",
            ]),
            ("Maintenance scheduler", [
                "Preventive tasks are placed in planned changeovers",
                "Conflicts with the production plan are flagged",
                "Technicians see tasks on a tablet",
            ]),
            ("Live OEE board", [
                "OEE is shown per line on shop floor screens",
                "Figures update every minute",
                "Operators can enter downtime reasons",
            ]),
            ("Shift handover notes", [
                "Supervisors record open issues at shift end",
                "The next shift must acknowledge the notes",
                "Notes are searchable",
            ]),
            ("Spare parts tracking", [
                "Spare parts stock is tracked per site",
                "Low stock triggers a reorder suggestion",
                "Parts are linked to the machines that use them",
            ]),
            ("Shop floor tablets", [
                "Operators sign in with a badge scan",
                "Screens are readable from 2 metres",
                "Tablets work with gloves",
            ]),
            ("Production reports", [
                "Output, scrap and downtime are reported per shift",
                "Reports are emailed at shift end",
                "Data can be exported to the ERP",
            ]),
        ],
    },
    {
        "slug": "nonprofit",
        "shared": ["Consent management", "Board reports"],
        "prefixes": ["NPO", "DON", "IMP"],
        "caps": [
            ("Donor profiles", [
                "Each donor profile shows giving history and interests",
                "Duplicate donors are merged",
                "Donors can update preferences themselves",
            ]),
            ("Personalised updates", [
                "Updates are tailored to the programs a donor funded",
                "Updates can be scheduled by campaign",
                "Unsubscribes are honoured immediately",
            ]),
            ("Volunteer shift signup", [
                "Volunteers can sign up for shifts from a phone",
                "Shifts show the skills needed",
                "Volunteers can swap shifts without staff help",
            ]),
            ("Shift reminders", [
                "Reminders are sent 24 hours before a shift",
                "Volunteers can cancel from the reminder",
                "Coordinators see unfilled shifts highlighted",
            ]),
            ("Field data collection", [
                "Surveys work offline on low-cost phones",
                "Data syncs when a connection is available",
                "GPS location is captured with consent",
            ]),
            ("Impact dashboard", [
                "Indicators are shown against program targets",
                "Data can be broken down by region",
                "Dashboards can be shared with funders by link",
            ]),
            ("Grant calendar", [
                "Grant deadlines are shown on one calendar",
                "Reporting tasks have owners",
                "Reminders are sent 14 days before each deadline",
            ]),
            ("Online donations", [
                "Donors can give once or monthly",
                "Receipts are emailed automatically",
                "Tax relief details are captured where relevant",
            ]),
            ("Volunteer hours log", [
                "Hours are recorded per volunteer and shift",
                "Volunteers can download a yearly hours summary",
                "Coordinators can correct hours with a note",
            ]),
            ("Funder report builder", [
                "Reports are assembled from the template of each funder",
                "Figures are pulled from the impact dashboard",
                "Drafts can be reviewed by the program lead",
            ]),
            ("Consent management", [
                "Consent is recorded per channel and purpose",
                "Consent changes apply within 1 day",
                "Records show when and how consent was given",
            ]),
            ("Board reports", [
                "A quarterly summary is generated for the board",
                "Figures link back to their source",
                "Reports can be exported as PDF",
            ]),
        ],
    },
    {
        "slug": "hospitality",
        "shared": ["Staff mobile access", "Guest messaging"],
        "prefixes": ["HOTL", "HOSP", "GST"],
        "caps": [
            ("Dynamic room pricing", [
                "Rates are suggested daily for the next 90 days",
                "Owners can set a minimum and maximum rate",
                "Local events are included in the suggestion",
            ]),
            ("Channel manager sync", [
                "Rates and availability sync to at least 3 booking sites",
                "Overbooking is prevented across channels",
                "Sync errors are shown within 5 minutes",
            ]),
            ("Table booking", [
                "Guests can book tables online",
                "Deposits can be required for large groups",
                "No-shows are recorded against the guest profile",
            ]),
            ("Live floor plan", [
                "Staff see table status in real time",
                "Walk-ins can be seated in one tap",
                "Estimated wait times are shown to hosts",
            ]),
            ("Guest chat assistant", [
                "Common questions are answered automatically in at least 4 languages",
                "Requests the assistant cannot handle go to staff",
                "Response time is under 1 minute",
            ]),
            ("Review theme analysis", [
                "Reviews from at least 4 sites are collected",
                "Comments are grouped into themes like cleanliness and breakfast",
                "Themes show a trend over time",
            ]),
            ("Housekeeping board", [
                "Room status is updated from a phone",
                "Priority rooms for early arrivals are highlighted",
                "Supervisors can inspect and sign off rooms",
            ]),
            ("Guest profiles", [
                "Preferences are stored for returning guests",
                "Guests can opt out of profiling",
                "Profiles are visible at check-in",
            ]),
            ("Staff mobile access", [
                "Staff can see tasks and bookings on a phone",
                "Access ends when a staff member leaves",
                "The app works on shared devices with quick sign-in",
            ]),
            ("Guest messaging", [
                "Guests receive confirmations and updates by SMS or email",
                "Guests can reply to reach staff",
                "Messages are kept with the booking",
            ]),
        ],
    },
    {
        "slug": "automotive",
        "shared": ["Vehicle records", "Payments and invoices"],
        "prefixes": ["AUTO", "CAR", "GAR", "MOTO"],
        "caps": [
            ("Fault code lookup", [
                "Fault codes are explained with likely causes",
                "Suggested tests are listed in order",
                "Lookups work for vehicles from the last 15 years",
            ]),
            ("Telematics import", [
                "Mileage is imported daily from telematics providers",
                "Vehicles without data for 3 days are flagged",
                "Data is linked to the vehicle record",
            ]),
            ("Service planning", [
                "Services are scheduled before the manufacturer interval is reached",
                "Bookings avoid peak rental days",
                "Workshops receive a job sheet",
            ]),
            ("Charger queue", [
                "Residents can join a charging queue from a phone",
                "The next resident is notified when a charger frees up",
                "Cars left idle after charging are flagged after 15 minutes",
            ]),
            ("Charging cost split", [
                "Energy per session is metered",
                "Each resident receives a monthly bill",
                "Rates can be set by the building manager",
            ]),
            ("Market price comparison", [
                "Prices of similar cars within 100 miles are shown",
                "Mileage and trim adjustments are applied",
                "The comparison shows how many listings were used",
            ]),
            ("Digital job cards", [
                "Technicians record work and parts on a tablet",
                "Customers approve extra work by text message",
                "Job cards are stored with the vehicle history",
            ]),
            ("Vehicle history", [
                "Service and repair history is shown in one timeline",
                "History can be shared with the next owner",
                "Entries show the workshop that did the work",
            ]),
            ("Charger fault reporting", [
                "Residents can report a faulty charger from the app",
                "The building manager is notified within 5 minutes",
                "Faulty chargers are removed from the queue",
            ]),
            ("Stock ageing report", [
                "Each car shows days in stock and its current price position",
                "Cars older than 60 days are flagged for repricing",
                "The report can be filtered by make and model",
            ]),
            ("Vehicle records", [
                "Each vehicle has a record with make, model and registration",
                "Records can be filled from a registration lookup",
                "Duplicate records are merged",
            ]),
            ("Payments and invoices", [
                "Invoices are generated automatically",
                "Customers can pay by card online",
                "Payment status is shown on each record",
            ]),
        ],
    },
    {
        "slug": "telecom",
        "shared": ["Customer notifications", "Reporting dashboard"],
        "prefixes": ["TEL", "NET", "CX"],
        "caps": [
            ("Alarm correlation", [
                "Alarms from at least 3 equipment vendors are correlated",
                "Correlated incidents name a probable root cause",
                "Duplicate alarms are suppressed",
            ]),
            ("Outage map", [
                "Affected areas are shown on a map within 5 minutes",
                "Customers can check outage status online",
                "Estimated fix times are updated",
            ]),
            ("Unified billing view", [
                "Agents see charges, payments and plan changes in one view",
                "Each charge has a plain explanation",
                "Agents can issue a credit within policy",
            ]),
            ("Coverage demand signups", [
                "Residents can register interest by address",
                "Demand is shown as a heatmap",
                "Signups are linked to build cost estimates",
            ]),
            ("Corporate plan management", [
                "Admins can assign plans to employees",
                "Pooled data usage is shown live",
                "Unused lines are flagged monthly",
            ]),
            ("Invoice reconciliation", [
                "Invoices are matched to active lines",
                "Charges for cancelled lines are flagged",
                "Monthly savings are reported",
            ]),
            ("Network capacity forecast", [
                "Traffic is forecast per cell for 12 months",
                "Cells near capacity are highlighted",
                "Forecasts can be exported",
            ]),
            ("Field technician dispatch", [
                "Jobs are assigned by skill and location",
                "Technicians receive job details on a phone",
                "Customers get an arrival window",
            ]),
            ("Complaint case tracking", [
                "Every complaint gets a case number and an owner",
                "Cases open longer than 5 days are escalated",
                "Customers receive an update at each status change",
            ]),
            ("Device inventory", [
                "Every phone is linked to an employee and a line",
                "Devices without activity for 30 days are flagged",
                "Lost devices can be locked remotely",
            ]),
            ("Customer notifications", [
                "Customers are notified by SMS of changes that affect them",
                "Notifications respect contact preferences",
                "Delivery failures are logged",
            ]),
            ("Reporting dashboard", [
                "Key figures are shown on one dashboard",
                "Data refreshes every 15 minutes",
                "Dashboards can be exported",
            ]),
        ],
    },
    {
        "slug": "biotech-lab",
        "shared": ["User training records", "Audit-ready export"],
        "prefixes": ["LAB", "BIO", "SMPL", "ELN"],
        "caps": [
            ("Sample registration", [
                "Each sample receives a unique barcode",
                "Location is recorded down to the freezer box position",
                "Freeze-thaw cycles are counted",
            ]),
            ("Electronic lab notebook", [
                "Entries are versioned and signed",
                "Entries can link to samples and files",
                "Full-text search returns results in under 2 seconds",
            ]),
            ("Instrument booking", [
                "Only trained users can book an instrument",
                "Bookings longer than 4 hours need approval",
                "No-shows release the slot after 30 minutes",
            ]),
            ("Pipeline runs", [
                "Standard pipelines can be launched on a new batch in one step",
                "Each run records code version and parameters",
                "Failed runs show the failing step",
            ]),
            ("Chain of custody", [
                "Every transfer of a sample is logged",
                "Missing custody steps are flagged",
                "Custody history can be exported for audits",
            ]),
            ("Reagent inventory", [
                "Reagents are tracked with lot and expiry",
                "Expired reagents are flagged",
                "Low stock triggers a reorder request",
            ]),
            ("Protocol library", [
                "Approved protocols are stored with versions",
                "Experiments reference the protocol version used",
                "Changes require review",
            ]),
            ("Instrument data import", [
                "Files from connected instruments are imported automatically",
                "Data is linked to the run and sample",
                "Import errors are reported to the user",
            ]),
            ("User training records", [
                "Training records are stored per user and method",
                "Expired training blocks the related tasks",
                "Trainers can sign off training online",
            ]),
            ("Audit-ready export", [
                "Any record can be exported with its full history",
                "Exports are signed and time-stamped",
                "Exports meet data integrity guidelines",
            ]),
        ],
    },
    {
        "slug": "sports",
        "shared": ["Member payments", "Athlete data privacy"],
        "prefixes": ["SPRT", "TEAM", "FIT"],
        "caps": [
            ("Training load tracking", [
                "Load is calculated from session duration and intensity",
                "Players above a safe load increase are flagged",
                "Coaches see the team load on one chart",
            ]),
            ("Wearable data import", [
                "Data from at least 3 wearable brands is imported",
                "Heart rate and distance are stored per session",
                "Players can revoke access",
            ]),
            ("Client progress log", [
                "Trainers record measurements and lifts per session",
                "Progress charts are shared with clients",
                "Goals can be set and tracked",
            ]),
            ("Video feedback", [
                "Trainers can send video clips up to 60 seconds",
                "Clients can reply with questions",
                "Videos are stored privately",
            ]),
            ("Race registration", [
                "Runners can register and pay online",
                "Entry caps are enforced",
                "Waiting lists fill cancelled places",
            ]),
            ("Live results", [
                "Chip times are published within 1 minute of finishing",
                "Results can be filtered by category",
                "Runners receive a results link",
            ]),
            ("Fixture scheduler", [
                "Fixtures are generated for all teams in a season",
                "Facility clashes are resolved automatically",
                "Changes notify affected teams",
            ]),
            ("Team communication", [
                "Coaches can message the whole team or parents",
                "Availability can be collected per match",
                "Messages are archived",
            ]),
            ("Bib and chip assignment", [
                "Each runner gets a bib number linked to a timing chip",
                "Bib lists export for the timing company",
                "Late transfers update the chip assignment",
            ]),
            ("Facility booking", [
                "Coaches can book pitches and courts for training",
                "Bookings respect fixture priority",
                "Unused bookings are released 24 hours ahead",
            ]),
            ("Member payments", [
                "Fees can be paid online by card",
                "Overdue payments trigger a reminder after 7 days",
                "Receipts are emailed automatically",
            ]),
            ("Athlete data privacy", [
                "Athletes choose who can see their data",
                "Data can be deleted on request",
                "Health data is stored encrypted",
            ]),
        ],
    },
    {
        "slug": "food-delivery",
        "shared": ["Payment and payout statements", "Service status notifications"],
        "prefixes": ["FOOD", "DLV", "KITC"],
        "caps": [
            ("Branded ordering site", [
                "Restaurants can launch an ordering site with their own menu and logo",
                "Checkout takes fewer than 5 steps",
                "Orders appear on the kitchen screen instantly",
            ]),
            ("Demand forecast", [
                "Order volume is forecast per dish for the next 7 days",
                "Forecasts consider weather and local events",
                "Forecast error is reported weekly",
            ]),
            ("Kitchen display", [
                "Orders are shown by preparation time",
                "Late orders are highlighted",
                "Staff can mark items ready",
            ]),
            ("Courier batching", [
                "Nearby pickups are batched when they add less than 5 minutes",
                "Couriers see the batch on one map",
                "Customers see updated ETAs",
            ]),
            ("Team lunch ordering", [
                "Employees choose meals within a per-person budget",
                "Orders close at a set time",
                "The office receives one invoice",
            ]),
            ("Delivery tracking", [
                "Customers see the courier on a map",
                "ETAs are updated every minute",
                "Customers are notified on arrival",
            ]),
            ("Menu management", [
                "Dishes can be marked sold out in one tap",
                "Allergens are shown for every dish",
                "Menu changes publish within 1 minute",
            ]),
            ("Loyalty program", [
                "Customers earn points on direct orders",
                "Points can be redeemed at checkout",
                "Restaurants set the reward rules",
            ]),
            ("Earnings summary", [
                "Couriers see earnings per platform and per hour",
                "Weekly summaries export as CSV",
                "Tips are shown separately",
            ]),
            ("Payment and payout statements", [
                "Every payment and payout is itemised",
                "Statements can be downloaded monthly",
                "Disputes can be raised within 30 days",
            ]),
            ("Service status notifications", [
                "Users are notified of delays or outages within 5 minutes",
                "Notifications explain the expected impact",
                "Users can choose SMS or push",
            ]),
        ],
    },
    {
        "slug": "developer-tools",
        "shared": ["Single sign-on", "Webhooks and public API"],
        "prefixes": ["DEV", "CI", "API", "OBS"],
        "caps": [
            ("Flaky test detection", [
                "Tests that both pass and fail on the same commit are flagged",
                "Each flaky test shows its failure rate",
                "Flaky tests can be quarantined",
            ]),
            ("CI run analytics", [
                "Pipeline duration is shown per stage",
                "The slowest 10 steps are ranked",
                "Trends cover the last 90 days",
            ]),
            ("Issue auto-labelling", [
                "New issues receive suggested labels within 1 minute",
                "Maintainers can correct labels",
                "Corrections improve future suggestions",
            ]),
            ("Crash reporting SDK", [
                "Crashes include stack trace, release and device",
                "The SDK adds less than 1 MB to the app",
                "Reports are grouped by root cause",
            ]),
            ("Release health", [
                "The crash-free rate is shown per release",
                "A release can be halted from the dashboard",
                "Alerts fire when the crash rate doubles",
            ]),
            ("API usage analytics", [
                "Requests are counted per customer and endpoint",
                "Error rates are shown per endpoint",
                "Data is retained for 13 months",
            ]),
            ("Notification digest", [
                "Notifications are grouped into a daily digest",
                "Mentions are delivered immediately",
                "Digest rules can be set per repository",
            ]),
            ("Access token management", [
                "Tokens can be scoped per project",
                "Tokens expire by default after 90 days",
                "Token use is logged",
            ]),
            ("API changelog notices", [
                "Breaking changes are announced to affected customers 90 days ahead",
                "Notices list the endpoints each customer uses",
                "Customers can acknowledge a notice",
            ]),
            ("Single sign-on", [
                "Users sign in through GitHub, GitLab or SAML",
                "Access follows organisation membership",
                "Admins can require SSO for everyone",
            ]),
            ("Webhooks and public API", [
                "Key events are available as webhooks",
                "Webhook deliveries are retried for 24 hours",
                "A public API covers all dashboard data",
            ]),
        ],
    },
    {
        "slug": "construction",
        "shared": ["Offline mode on site", "Weekly project reports"],
        "prefixes": ["CONS", "SITE", "BLD"],
        "caps": [
            ("Daily site diary", [
                "Site managers record weather, labour and progress from a phone",
                "Photos are geotagged and time-stamped",
                "Diaries are locked after 48 hours",
            ]),
            ("Snag list", [
                "Snags are pinned on the drawing",
                "Each snag is assigned to a trade",
                "Trades can close snags with a photo",
            ]),
            ("Drawing control", [
                "Only the latest approved drawing is shown by default",
                "Superseded drawings are watermarked",
                "Tablets sync new drawings within 10 minutes",
            ]),
            ("Change order tracking", [
                "Change orders record cost and time impact",
                "Client approval is captured digitally",
                "Approved changes update the budget",
            ]),
            ("Schedule progress", [
                "Planned and actual progress are compared per activity",
                "Delayed activities are highlighted",
                "The schedule can be imported from common planning tools",
            ]),
            ("Quote builder", [
                "Quotes are built from a library of rates and past jobs",
                "Margin is shown before sending",
                "Quotes can be sent as PDF",
            ]),
            ("Safety inspections", [
                "Inspections follow a checklist on a tablet",
                "Failed items create actions",
                "Inspection records are stored per site",
            ]),
            ("Subcontractor documents", [
                "Insurance and certificates are stored per subcontractor",
                "Expiring documents trigger reminders",
                "Expired documents block site access",
            ]),
            ("Offline mode on site", [
                "Forms and drawings work without a connection",
                "Data syncs when coverage returns",
                "Sync conflicts are shown to the user",
            ]),
            ("Weekly project reports", [
                "A weekly project report is generated automatically",
                "Reports include photos and open issues",
                "Reports can be shared with the client",
            ]),
        ],
    },
    {
        "slug": "climate",
        "shared": ["Methodology notes", "Stakeholder sharing"],
        "prefixes": ["CARB", "ESG", "CLIM"],
        "caps": [
            ("Activity data import", [
                "Energy and fuel invoices are imported automatically",
                "Missing months are flagged",
                "Units are converted consistently",
            ]),
            ("Emission calculation", [
                "Emissions are calculated with published emission factors",
                "Factor sources and versions are recorded",
                "Scope 1, 2 and 3 are reported separately",
            ]),
            ("Supplier portal", [
                "Suppliers can submit data without creating an account",
                "Submissions are validated against expected ranges",
                "Reminders go out 7 days before the deadline",
            ]),
            ("Disclosure mapping", [
                "Metrics are mapped to at least 2 disclosure frameworks",
                "Gaps against each framework are listed",
                "Drafts can be exported for review",
            ]),
            ("Reduction planner", [
                "Actions can be modelled with cost and emission impact",
                "The plan is compared with the target pathway",
                "Actions have owners and dates",
            ]),
            ("Source data audit trail", [
                "Every figure links to its source data",
                "Changes are logged with author and reason",
                "Auditors get read-only access",
            ]),
            ("Emissions by site", [
                "Emissions are shown per site and month",
                "Sites can be compared per unit produced",
                "Data refreshes daily",
            ]),
            ("Target tracking", [
                "Progress against targets is shown on the home page",
                "Off-track targets are highlighted",
                "Targets can be set per business unit",
            ]),
            ("Supplier data scoring", [
                "Each supplier gets a data quality score",
                "Suppliers with estimated data are listed first",
                "Scores are shared with the supplier",
            ]),
            ("Methodology notes", [
                "Every figure shows the method used",
                "Method changes are versioned",
                "Notes can be exported with reports",
            ]),
            ("Stakeholder sharing", [
                "Dashboards can be shared by read-only link",
                "Shared links can expire",
                "Viewers cannot see raw supplier data",
            ]),
        ],
    },
    {
        "slug": "pharmacy",
        "shared": ["Staff roles and access", "Medicine information lookup"],
        "prefixes": ["RX", "PHRM", "MEDS"],
        "caps": [
            ("Repeat prescription requests", [
                "Patients can request repeats from a phone",
                "Requests are sent to the prescriber automatically",
                "Patients are notified when items are ready",
            ]),
            ("Stock expiry tracking", [
                "Batches are tracked by barcode with expiry date",
                "Stock expiring within 60 days is flagged",
                "Expired stock is blocked from dispensing",
            ]),
            ("Dose reminders", [
                "Patients receive reminders at each scheduled dose",
                "Missed doses are recorded",
                "Reminders can be shared with a carer",
            ]),
            ("Interaction warnings", [
                "Known interactions are flagged when a medicine is added",
                "Warnings show severity",
                "Pharmacists can record an override reason",
            ]),
            ("Barcode medication rounds", [
                "Each dose is scanned against the prescription",
                "Mismatches block the administration",
                "Rounds are recorded electronically",
            ]),
            ("Dispensing queue", [
                "Prescriptions are queued by collection time",
                "Staff see items needing a pharmacist check",
                "Queue status is shown to patients",
            ]),
            ("Controlled drugs register", [
                "Controlled drug movements are recorded electronically",
                "Balances are checked at each entry",
                "The register meets regulatory requirements",
            ]),
            ("Supplier ordering", [
                "Orders are suggested from usage and stock",
                "Orders are sent to wholesalers electronically",
                "Deliveries are checked against orders within 1 day",
            ]),
            ("Staff roles and access", [
                "Pharmacists, technicians and nurses see different functions",
                "Every action is recorded with the user",
                "Access is removed when staff leave",
            ]),
            ("Medicine information lookup", [
                "Dosage and warnings are shown for any medicine",
                "Information comes from a licensed database",
                "Lookups work offline for common medicines",
            ]),
        ],
    },
]

# Personas per domain, aligned field by field (one coherent product idea each):
#   users    plural noun phrase              "for {users}"
#   job      base-form verb phrase           "helps them {job}"
#   problem  plural present verb phrase      "who today {problem}"
#   diff     3rd-person singular verb phrase "it {diff}"
#   outcome  full clause                     "so that {outcome}"
#   kpi      noun phrase                     "measured by {kpi}"
#   alt      noun phrase                     "unlike {alt}"
#   aim      base-form verb phrase           "to {aim}"
#   core     titles of the domain capabilities every requirements list for it includes
PERSONA_FIELDS = ("users", "job", "problem", "diff", "outcome", "kpi", "alt", "aim", "core")
PERSONAS: dict[str, list[tuple]] = {
    "fintech": [
        ("finance leads at small online shops", "reconcile card payouts against bank deposits",
         "copy bank statements into spreadsheets every week", "connects to bank feeds through open banking",
         "month-end close takes hours instead of days", "days to close the books", "manual bookkeeping",
         "make reconciliation a background task", ["Connect bank accounts", "Match payouts to deposits"]),
        ("freelance designers and developers", "forecast cash flow for the next 13 weeks",
         "discover cash shortfalls only when a payment bounces", "explains every forecast number in plain language",
         "cash surprises become rare and planned for", "the number of weeks with a negative balance",
         "generic accounting suites", "give freelancers a clear view of their cash",
         ["Forecast weekly cash position", "Categorize transactions"]),
        ("controllers at mid-size wholesalers", "chase overdue invoices without awkward phone calls",
         "send reminder emails by hand from a list of late payers",
         "times reminders to the payment habits of each customer", "fewer invoices slip past their due date",
         "the share of invoices paid on time", "manual dunning letters",
         "get paid on time without damaging customer relationships",
         ["Send invoice reminders", "Export to accounting software"]),
        ("treasurers of community savings groups", "track contributions and shared expenses across members",
         "lose track of who paid what and when", "keeps one shared ledger that every member can see",
         "members trust the books and disputes disappear", "disputed entries per quarter",
         "a notebook passed between members", "make group finances transparent to every member",
         ["Shared group ledger", "Keep an audit trail of changes"]),
    ],
    "healthcare-scheduling": [
        ("front-desk staff at busy GP clinics", "fill last-minute appointment cancellations",
         "juggle phone calls, paper diaries and voicemail",
         "offers freed slots to a waitlist by text message within minutes",
         "freed slots are filled and clinic time is used well", "unfilled cancelled slots per week",
         "the basic calendar in the practice software", "keep every clinician hour used for patient care",
         ["Cancellation waitlist", "Online self-booking"]),
        ("operations managers at multi-site clinic groups", "balance clinician rosters across several sites",
         "rebuild the weekly roster by hand when someone is sick",
         "respects clinician skills and room equipment when booking",
         "every site has the right clinicians on shift", "unused clinician hours per week", "shared calendars",
         "staff every site with the right skills", ["Roster planning", "Room and equipment matching"]),
        ("nurse coordinators in outpatient departments", "send patients reminders they actually read",
         "see empty slots only after patients fail to arrive", "integrates with existing electronic health records",
         "no-show rates fall and waiting lists shrink", "the no-show rate per clinic",
         "the scheduling module of the health record system", "cut the time patients wait for care",
         ["Appointment reminders", "EHR integration", "No-show reporting"]),
        ("physiotherapists running their own practice", "book follow-up visits before patients leave",
         "lose patients who never reschedule after a missed visit",
         "lets patients reschedule without calling the clinic", "patients complete their full course of treatment",
         "the share of patients who finish their treatment plan", "a desk diary",
         "make booking as easy for patients as ordering a taxi",
         ["Follow-up booking at checkout", "Online self-booking"]),
    ],
    "logistics": [
        ("dispatchers at regional trucking firms", "plan delivery routes around live traffic and time windows",
         "rebuild routes on whiteboards every morning", "re-plans routes automatically when a driver falls behind",
         "more deliveries arrive on time with fewer miles driven", "the on-time delivery rate",
         "static route sheets", "make every route plan realistic from the first stop",
         ["Optimize daily routes", "Exception alerts"]),
        ("warehouse shift leads", "book dock slots for inbound trucks", "watch trucks queue at the gate for hours",
         "lets carriers book and move their own slots online", "trucks spend less time idling at the dock",
         "average dock waiting time", "a whiteboard at the gatehouse",
         "turn the loading dock into a scheduled resource", ["Dock slot booking", "Gate check-in"]),
        ("operations managers at parcel couriers", "give customers accurate arrival times",
         "answer dozens of where-is-my-parcel calls a day", "shares a live tracking link with each recipient",
         "service calls about late parcels drop sharply", "calls about parcel status per thousand deliveries",
         "phone hotlines", "keep recipients informed without extra calls",
         ["Live ETA for recipients", "Driver mobile app"]),
        ("owner-operators of small delivery fleets", "collect proof of delivery for every drop",
         "chase drivers for signed paper delivery notes",
         "runs on the drivers' own phones with no extra hardware", "invoices go out the same day as the delivery",
         "days from delivery to invoice", "end-of-day phone check-ins", "get paid faster for every delivery",
         ["Electronic proof of delivery", "Driver mobile app"]),
    ],
    "edtech": [
        ("secondary school maths teachers", "spot which students are falling behind each week",
         "find gaps in understanding only at the end-of-term exam",
         "turns short weekly quizzes into a mastery map per student", "struggling students get help weeks earlier",
         "the share of students below mastery at term end", "printed worksheets",
         "give teachers a clear picture of each class", ["Class progress dashboard", "Adaptive practice sets"]),
        ("adult learners studying for certification exams", "practise with questions matched to their weak topics",
         "waste study time on topics they already know", "adapts question difficulty after every answer",
         "learners pass exams with fewer study hours", "pass rates on the target exam",
         "one-size-fits-all video courses", "make practice time count",
         ["Adaptive practice sets", "Exam readiness estimate"]),
        ("university teaching assistants", "grade short written answers consistently",
         "spend whole weekends marking by hand", "explains each suggested grade with the rubric line it used",
         "students get fair feedback within days", "hours of marking per course per week",
         "marking spreadsheets", "help every learner get timely feedback",
         ["Rubric-based grading assistant", "Class progress dashboard"]),
        ("homeschooling parents", "plan a term of lessons around curriculum goals",
         "piece together lesson plans from scattered websites",
         "maps every activity to national curriculum standards",
         "children cover the whole curriculum without gaps", "curriculum standards covered per term",
         "generic learning management systems", "make home education structured and complete",
         ["Lesson planner", "Curriculum mapping", "Offline mode"]),
    ],
    "agritech": [
        ("managers of small farm co-ops", "decide irrigation schedules from pooled soil sensor data",
         "rely on guesswork and paper notebooks", "pools sensor readings across neighbouring farms",
         "water use drops while yields stay stable", "litres of water used per tonne harvested",
         "single-farm sensor dashboards", "cut wasted irrigation water across the co-op",
         ["Import soil sensor readings", "Irrigation schedule recommendations", "Co-op benchmarking"]),
        ("agronomists advising smallholder farmers", "detect crop disease early from field photos",
         "notice disease only when it has already spread", "gives advice in the local language by text message",
         "disease outbreaks are contained before they spread", "the share of plots with disease caught early",
         "advice from occasional extension visits", "give every grower the data a large farm would have",
         ["Disease detection from photos", "SMS advisories"]),
        ("vineyard owners", "plan planting and harvest dates across many plots",
         "keep planting plans in separate spreadsheets for each plot",
         "combines weather forecasts with soil moisture readings", "harvest timing becomes predictable for buyers",
         "yield per hectare", "wall calendars in the farm office", "make field decisions from evidence, not habit",
         ["Plot planning calendar", "Import soil sensor readings"]),
        ("greenhouse growers", "track fertilizer use per house for compliance",
         "fill in compliance forms from memory at the end of the season",
         "works offline in greenhouses with patchy coverage", "compliance reports are ready without extra work",
         "hours spent on compliance paperwork", "paper logbooks", "make compliance a by-product of daily work",
         ["Fertilizer logbook", "Offline field data capture"]),
    ],
    "hr": [
        ("HR generalists at growing startups", "onboard new hires without missing a step",
         "chase paperwork through email threads", "builds checklists from the role and country automatically",
         "new hires are productive in their first week", "days until a new hire finishes a first real task",
         "shared folders and reminders in personal calendars", "make the first week at work feel organised",
         ["Onboarding checklists", "Document e-signature"]),
        ("hiring managers in retail chains", "screen applicants fairly and quickly",
         "read hundreds of CVs in a single afternoon", "hides names and photos during the first screening round",
         "time to hire shrinks without lowering the bar", "time to hire per role",
         "a heavyweight applicant tracking system", "give every applicant a fair hearing",
         ["Anonymous first-round screening", "Interview scheduling"]),
        ("people operations teams at remote-first companies", "run structured performance reviews",
         "run review cycles from copied documents that nobody finishes",
         "nudges managers in the chat tool they already use", "review cycles finish on time with useful feedback",
         "the review completion rate", "a once-a-year appraisal form",
         "make feedback a habit rather than a yearly chore", ["Structured review forms", "Manager nudges"]),
        ("payroll coordinators at multinational SMEs", "track leave and overtime across countries",
         "reconcile leave balances by hand before payroll", "applies local leave rules for each country",
         "payroll runs without leave corrections", "hours spent fixing payroll errors",
         "payroll software add-ons", "get leave right in every country",
         ["Leave tracking", "Headcount reporting"]),
    ],
    "retail": [
        ("owners of independent bookshops", "reorder stock before shelves run empty",
         "count stock by hand on Sunday evenings",
         "suggests order quantities from sales velocity and supplier lead times",
         "fewer shelves sit empty and less cash is tied up in stock", "stockout days per month",
         "stock counts on clipboards", "keep the right products on the shelf",
         ["Reorder suggestions", "Point-of-sale integration", "Stock count on mobile"]),
        ("store managers at regional grocery chains", "run promotions that actually move slow stock",
         "discount products on gut feeling", "predicts the margin impact of each promotion before it runs",
         "promotions clear slow stock without eroding margin", "margin on promoted products",
         "the basic reports in the till software", "base promotion decisions on real sales",
         ["Promotion planner", "Sales dashboard"]),
        ("online fashion boutique owners", "sync stock levels between the shop and the online store",
         "oversell items online that are already gone from the shelf",
         "updates online stock within seconds of a sale", "customers only buy what is actually in stock",
         "the rate of cancelled online orders", "manual stock updates",
         "treat the shop and online store as one inventory", ["Online stock sync", "Point-of-sale integration"]),
        ("category buyers at convenience store groups", "understand which products sell together",
         "guess at product ranges from last year's sales", "explains each suggestion with the sales data behind it",
         "ranges match what customers actually buy", "sales per metre of shelf", "advice from supplier sales reps",
         "build every range around real baskets", ["Basket analysis", "Supplier catalogue import"]),
    ],
    "energy": [
        ("facility managers of office buildings", "see which equipment wastes energy overnight",
         "read meters once a month and react too late", "breaks consumption down by circuit without new wiring",
         "energy bills fall without hurting comfort", "kilowatt hours used outside working hours",
         "monthly utility bills", "make the energy use of every building visible",
         ["Smart meter data import", "Overnight waste report"]),
        ("homeowners with rooftop solar", "plan battery charging around tariff changes",
         "set battery schedules once and forget them", "forecasts tariffs and solar output a day ahead",
         "more of their own solar power is used at home", "the self-consumption rate",
         "the inverter vendor's app", "put cheap and clean hours to work",
         ["Battery charge planning", "Tariff-aware scheduling"]),
        ("energy managers at mid-size factories", "shift heavy electricity use to cheaper hours",
         "pay peak tariffs without knowing why", "controls compressors, chillers and chargers directly",
         "peak demand charges shrink", "peak demand in kilowatts", "a yearly energy audit",
         "cut peak charges without slowing production",
         ["Peak demand alerts", "Device control", "Tariff-aware scheduling"]),
        ("operators of community solar projects", "share solar output fairly among community members",
         "split credits by hand in spreadsheets",
         "allocates credits from metered data with rules every member can see",
         "members trust how shared solar credits are split", "disputed credit statements per quarter",
         "ad hoc sharing agreements", "make community energy simple to share",
         ["Solar credit allocation", "Smart meter data import"]),
    ],
    "legal": [
        ("in-house counsel at software companies", "review contracts against a standard playbook",
         "read every contract line by line under time pressure",
         "highlights clauses that deviate from the company playbook",
         "contracts are reviewed faster with fewer missed risks", "average contract review time",
         "generic document management systems", "let lawyers spend their time on judgement rather than admin",
         ["Contract clause comparison", "Template library"]),
        ("paralegals at small litigation firms", "keep track of court deadlines across many cases",
         "track deadlines in personal calendars that nobody else sees",
         "calculates deadlines from court rules automatically", "no court deadline is missed",
         "missed or near-missed deadlines", "sticky notes and email folders", "protect every deadline",
         ["Deadline calculator", "Matter dashboard"]),
        ("legal aid clinic coordinators", "triage incoming client requests",
         "answer the same intake questions by phone again and again",
         "keeps client data encrypted and within the jurisdiction", "clients get a first answer the same day",
         "time from intake to first response", "walk-in queues", "help more people get legal advice quickly",
         ["Client intake form", "Secure client portal"]),
        ("solo immigration lawyers", "assemble document bundles for hearings",
         "copy and renumber exhibits by hand the night before a hearing",
         "builds indexed bundles with page numbers in one step", "bundles are ready days before each hearing",
         "hours spent preparing each bundle", "manual checklists", "make routine legal work fast and safe",
         ["Hearing bundle builder", "Secure client portal", "Time recording"]),
    ],
    "travel": [
        ("travel managers at consulting firms", "keep business trips within policy without slowing bookings",
         "approve every booking by email", "applies the travel policy at the moment of booking",
         "travel spend stays within budget and travellers stay happy", "out-of-policy bookings per month",
         "after-the-fact expense audits", "make booking travel simple and within policy",
         ["Policy-aware search", "Approval workflow"]),
        ("independent tour operators", "bundle local tours with accommodation",
         "sell tours through phone calls and messaging apps", "offers tours and rooms in one checkout",
         "small operators sell more packages online", "online package revenue", "big online travel agencies",
         "help small operators compete online", ["Package checkout", "Supplier inventory import"]),
        ("families planning multi-city trips", "plan an itinerary that fits the budget of the whole family",
         "juggle a dozen browser tabs and shared notes",
         "keeps the plans of the whole group in one shared itinerary",
         "trips stay on budget with no missed connections", "trip spend against the planned budget",
         "printed booking confirmations", "make family trips easy to plan together",
         ["Shared itinerary", "Budget tracking"]),
        ("event planners booking group travel", "rebook travellers quickly when flights are disrupted",
         "learn about cancellations from angry travellers",
         "watches flight status and proposes alternatives automatically",
         "disrupted travellers are rebooked before they reach the desk",
         "average rebooking time after a disruption", "airline hotlines", "take the stress out of disruptions",
         ["Disruption alerts", "Traveller profiles"]),
    ],
    "insurance": [
        ("claims handlers at regional insurers", "settle simple claims in a single day",
         "re-key claim details from emails and photos", "reads claim photos and documents automatically",
         "simple claims are paid faster and handlers focus on complex ones",
         "days from first notice to settlement", "shared inboxes and spreadsheets",
         "make insurance claims feel fair and fast", ["Claim intake", "Document extraction", "Fast-track settlement"]),
        ("independent insurance brokers", "compare quotes from several insurers for a client",
         "fill in the same client details on many insurer portals", "submits one client form to many insurers",
         "brokers quote more clients in less time", "quotes issued per broker per week",
         "insurer-by-insurer portals", "cut paperwork between brokers and insurers",
         ["Multi-insurer quoting", "Renewal reminders"]),
        ("small business owners buying cover", "understand what their policy actually covers",
         "discover gaps in cover only after a loss", "explains cover in plain language with examples",
         "customers buy the cover they actually need", "claims rejected for coverage gaps", "dense policy wordings",
         "help customers understand their cover", ["Plain-language cover summary", "Renewal reminders"]),
        ("underwriters of specialty policies", "price risks with better data",
         "rely on questionnaires that are out of date", "enriches applications with public data sources",
         "premiums match the real risk of each policy", "the loss ratio per product line",
         "broker-supplied questionnaires", "price every risk on evidence",
         ["Risk data enrichment", "Claims audit log"]),
    ],
    "public-sector": [
        ("caseworkers at city housing departments", "process benefit applications consistently",
         "chase missing documents by letter",
         "guides applicants to submit complete applications the first time",
         "applications are decided faster and more fairly", "median processing days per application",
         "paper forms and letters", "end the paper chase", ["Guided online application", "Caseworker queue"]),
        ("permit officers in small municipalities", "issue building permits on time",
         "track permit status in paper files", "shows applicants where their permit stands at every step",
         "permits are issued within statutory deadlines", "average days to a permit decision",
         "a general case management system", "make public services easy to use and accountable",
         ["Status tracking for residents", "Decision audit trail", "Guided online application"]),
        ("residents reporting local issues", "report potholes and broken streetlights and follow the fix",
         "never hear back after calling the council", "publishes status updates openly",
         "residents trust that reported issues get fixed", "resident satisfaction with issue resolution",
         "phone hotlines", "show residents what happens to their requests",
         ["Issue reporting with location", "Status tracking for residents"]),
        ("procurement officers at regional councils", "run transparent tenders",
         "manage tenders through email attachments", "keeps a complete audit trail for every decision",
         "more suppliers bid and awards stand up to scrutiny", "bids received per tender", "a shared mailbox",
         "make public spending open to scrutiny", ["Tender publication", "Decision audit trail"]),
    ],
    "gaming": [
        ("indie game studios", "find out why players quit in the first hour",
         "guess at churn causes from store reviews", "replays anonymised player sessions as heatmaps",
         "more players stay past the first session", "day-1 and day-7 retention", "forum threads",
         "help small studios understand their players", ["Session heatmaps", "Funnel analytics", "Engine SDK"]),
        ("community managers of online multiplayer games", "moderate chat without burning out the team",
         "read toxic chat logs by hand", "flags toxic messages in real time in several languages",
         "communities stay welcoming and moderators stay healthy", "abuse reports per thousand players",
         "keyword block lists", "keep game communities safe", ["Real-time chat moderation", "Player reports"]),
        ("live-ops teams at mobile game publishers", "tune in-game events from live data",
         "change event settings blindly and wait a week for results", "runs controlled experiments on live events",
         "events earn more without annoying players", "revenue per daily active user", "gut-feel event tuning",
         "make live operations data-driven", ["Live event experiments", "Live config updates"]),
        ("esports tournament organisers", "run fair tournaments with automatic brackets",
         "manage brackets in spreadsheets and chat servers",
         "updates brackets the moment a match result is confirmed",
         "tournaments finish on schedule with fewer disputes", "disputes per tournament",
         "hand-drawn bracket sheets", "make community tournaments easy to run",
         ["Tournament brackets", "Player reports"]),
    ],
    "media": [
        ("editors at local news sites", "see which stories bring in loyal subscribers",
         "judge stories by page views alone", "connects reading behaviour to subscription events",
         "newsrooms invest in stories that keep subscribers", "subscriber conversion per story",
         "traffic dashboards", "tie editorial choices to reader loyalty",
         ["Story conversion tracking", "Audience dashboard"]),
        ("independent podcasters", "publish podcast episodes with transcripts and chapters",
         "write show notes by hand after every episode", "transcribes audio automatically with speaker names",
         "episodes are easier to find and share", "monthly listeners per episode", "hosting platform defaults",
         "make every episode searchable", ["Automatic transcription", "Chapter markers"]),
        ("video producers at small agencies", "find and clear footage rights quickly",
         "search hard drives and email for the right clip",
         "tags footage with searchable labels and licence terms",
         "projects never stall on a missing clip or licence", "time spent searching for footage",
         "folders of unlabelled footage", "keep every clip findable and cleared",
         ["Footage library", "Licence tracking"]),
        ("subscription managers at digital magazines", "reduce subscriber churn",
         "notice cancellations only on the monthly report", "predicts churn risk from reading habits",
         "fewer subscribers cancel without warning", "monthly subscriber churn", "exit surveys",
         "keep subscribers engaged", ["Churn risk scores", "Newsletter builder", "Paywall rules"]),
    ],
    "cybersecurity": [
        ("IT admins at small businesses", "patch the vulnerabilities that matter most first",
         "receive thousands of scanner findings with no ranking",
         "ranks vulnerabilities by exploitability and asset importance",
         "critical exposures are closed within days", "mean time to remediate critical vulnerabilities",
         "raw scanner reports", "make good security achievable for small teams",
         ["Vulnerability prioritisation", "Asset inventory"]),
        ("security analysts in lean SOC teams", "triage security alerts without drowning in noise",
         "switch between many consoles to investigate a single alert",
         "groups related alerts into a single incident", "analysts handle more incidents with less fatigue",
         "alerts per analyst per shift", "a patchwork of security tools", "turn alert noise into clear incidents",
         ["Alert correlation", "Incident timeline", "Ticketing integration"]),
        ("compliance leads at SaaS startups", "prepare evidence for security audits",
         "collect screenshots for auditors by hand",
         "collects audit evidence continuously from cloud accounts",
         "audits pass without a last-minute scramble", "hours spent preparing each audit",
         "annual audit checklists", "keep the company audit-ready all year",
         ["Audit evidence collection", "Access review"]),
        ("managed service providers", "spot phishing attacks before staff click",
         "find out about phishing after an account is compromised",
         "trains staff with realistic simulated phishing", "fewer staff fall for phishing emails",
         "the phishing click rate", "one-off awareness videos", "make every employee a line of defence",
         ["Phishing simulation", "Incident timeline"]),
    ],
    "real-estate": [
        ("property managers of small rental portfolios", "handle maintenance requests from tenants",
         "juggle tenant calls, texts and emails", "lets tenants report issues with photos and track progress",
         "repairs are handled faster and tenants renew more often",
         "average days to close a maintenance request", "a shared phone line",
         "make renting smooth for tenants and landlords",
         ["Maintenance requests", "Contractor directory", "Rent collection"]),
        ("independent estate agents", "match buyers with listings they will actually view",
         "send the same listings to every buyer", "learns buyer preferences from viewings and feedback",
         "agents book more viewings that lead to offers", "viewings per sale", "listing portals",
         "help buyers find the right home faster", ["Listing matching", "Viewing scheduler"]),
        ("first-time home buyers", "compare the true cost of homes before making an offer",
         "discover extra costs only after signing", "estimates running costs, taxes and commute for each home",
         "buyers make offers with confidence", "buyers who exceed their monthly budget in the first year",
         "mortgage calculators", "make the cost of a home clear before the offer",
         ["True cost estimate", "Viewing scheduler"]),
        ("facility teams at coworking spaces", "fill vacant desks and meeting rooms",
         "track room bookings on a whiteboard", "shows live occupancy from desk sensors",
         "shared spaces are used well and members always find a desk", "average desk occupancy",
         "shared calendars", "make shared spaces easy to use", ["Desk booking", "Lease document storage"]),
    ],
    "manufacturing": [
        ("plant managers at mid-size factories", "predict machine failures before they stop the line",
         "fix machines only after they break", "reads sensor data from existing PLCs without new hardware",
         "unplanned downtime falls", "hours of lost production per month", "reactive maintenance",
         "make every line predictable", ["PLC data collection", "Failure prediction"]),
        ("quality engineers in electronics assembly", "trace defects back to their root cause",
         "investigate defects with paper travellers and memory",
         "links every unit to its batch, machine and operator", "defect rates drop and recalls are contained",
         "first-pass yield", "end-of-line inspection alone", "build quality into the process",
         ["Unit traceability", "Root cause analysis"]),
        ("maintenance planners at food processing plants", "schedule preventive maintenance around production",
         "plan maintenance in spreadsheets that ignore the production plan",
         "fits maintenance into planned changeovers", "maintenance happens without disrupting production",
         "preventive tasks completed on time", "standalone maintenance software", "keep lines safe and running",
         ["Maintenance scheduler", "Spare parts tracking"]),
        ("shift supervisors on packaging lines", "see line performance in real time",
         "learn about downtime in the next morning meeting", "shows OEE live on the shop floor",
         "problems are fixed during the shift, not the next day", "overall equipment effectiveness",
         "end-of-shift reports", "give supervisors live insight", ["Live OEE board", "Shift handover notes"]),
    ],
    "nonprofit": [
        ("fundraising teams at small charities", "keep donors engaged between campaigns",
         "send the same generic newsletter to every donor",
         "personalises updates from the giving history of each donor", "donors give again and stay longer",
         "the donor retention rate", "mass mailings", "build lasting relationships with donors",
         ["Donor profiles", "Personalised updates", "Online donations"]),
        ("volunteer coordinators at food banks", "schedule volunteers for every shift",
         "fill shifts with last-minute group texts", "lets volunteers swap shifts themselves",
         "every shift is covered without frantic texting", "unfilled volunteer shifts", "paper sign-up sheets",
         "make volunteering easy to fit into busy lives", ["Volunteer shift signup", "Shift reminders"]),
        ("program managers at international NGOs", "measure program impact for funders",
         "compile impact reports from scattered field spreadsheets",
         "collects field data on mobile even offline", "funders receive credible impact evidence on time",
         "days to produce an impact report", "consultant-led evaluations",
         "show the real difference programs make", ["Field data collection", "Impact dashboard"]),
        ("grant writers at community foundations", "track grant deadlines and reporting",
         "miss reporting deadlines buried in email", "turns funder templates into checklists with dates",
         "every report reaches the funder on time", "grant reports submitted on time", "shared inboxes",
         "never lose a grant to a missed deadline", ["Grant calendar", "Impact dashboard"]),
    ],
    "hospitality": [
        ("owners of boutique hotels", "set room rates that follow demand", "change prices by hand once a season",
         "adjusts rates daily from local events and competitor prices",
         "revenue per room rises without losing occupancy", "revenue per available room", "seasonal rate cards",
         "help independent hotels price like the big chains", ["Dynamic room pricing", "Channel manager sync"]),
        ("restaurant managers", "manage table bookings and walk-ins", "lose covers to no-shows and double bookings",
         "keeps a live floor plan for bookings and walk-ins", "tables are full and waits are short",
         "table turns per evening", "paper booking books", "fill every table at every service",
         ["Table booking", "Live floor plan"]),
        ("guest experience teams at resorts", "answer guest requests quickly",
         "answer the same questions at the front desk all day",
         "answers common guest questions by chat in the language of the guest",
         "guests get answers in minutes and rate their stay higher",
         "average response time to guest requests", "printed welcome folders", "make every guest feel looked after",
         ["Guest chat assistant", "Guest profiles", "Housekeeping board"]),
        ("hostel operators", "turn guest reviews into improvements",
         "read reviews across five sites without acting on them", "groups review comments into themes",
         "ratings rise because the top complaints get fixed", "the average guest rating",
         "reading reviews one by one", "learn from every review", ["Review theme analysis", "Housekeeping board"]),
    ],
    "automotive": [
        ("independent repair shop owners", "diagnose faults faster", "look up fault codes in forums and old manuals",
         "reads vehicle data through a standard OBD dongle", "repairs are right the first time",
         "comebacks per hundred repairs", "guesswork and parts swapping", "make vehicle repair predictable",
         ["Fault code lookup", "Digital job cards", "Vehicle history"]),
        ("fleet managers at rental companies", "plan servicing across a fleet",
         "track service intervals in spreadsheets",
         "combines mileage telematics with manufacturer service schedules",
         "fleet vehicles spend less time off the road", "the vehicle availability rate", "windscreen service stickers",
         "keep fleets on the road", ["Telematics import", "Service planning"]),
        ("EV drivers in apartment buildings", "share building chargers fairly",
         "argue over who gets the charger next", "queues charging sessions and splits the electricity cost",
         "every resident can charge without conflict", "average wait for a free charger",
         "a first-come charger rota", "make shared EV charging fair", ["Charger queue", "Charging cost split"]),
        ("used car dealers", "price used cars accurately", "price cars from gut feel and old guides",
         "compares live market listings for similar cars", "cars sell faster at a fair margin",
         "days a used car sits on the lot", "printed valuation books", "price every car on market evidence",
         ["Market price comparison", "Vehicle history"]),
    ],
    "telecom": [
        ("network operations engineers at regional carriers", "detect network outages before customers call",
         "learn about outages from social media", "correlates alarms across equipment vendors",
         "outages are fixed before most customers notice", "mean time to detect outages",
         "vendor-specific alarm consoles", "run networks proactively",
         ["Alarm correlation", "Outage map", "Field technician dispatch"]),
        ("customer care agents at mobile operators", "resolve billing complaints in one contact",
         "switch between six systems to answer one bill question",
         "shows the full billing history with plain explanations",
         "billing complaints are resolved at first contact", "the first contact resolution rate",
         "legacy billing screens", "make telecom bills understandable",
         ["Unified billing view", "Complaint case tracking"]),
        ("small internet service providers", "plan where to extend fibre coverage",
         "plan build-outs from outdated maps", "combines demand signups with build cost estimates",
         "new coverage goes where demand is highest", "cost per connected home", "gut feel and old surveys",
         "bring good connectivity to more places", ["Coverage demand signups", "Network capacity forecast"]),
        ("enterprise IT buyers", "manage mobile plans for hundreds of employees",
         "reconcile invoices for every phone line by hand", "pools data allowances across the whole company",
         "the company pays only for lines it uses", "monthly spend per active line", "carrier paper invoices",
         "keep mobile costs under control", ["Corporate plan management", "Invoice reconciliation"]),
    ],
    "biotech-lab": [
        ("QC analysts in biologics manufacturing", "track samples from freezer to result",
         "keep sample locations in paper logs and memory", "prints barcodes and tracks every freeze-thaw cycle",
         "samples are never lost and results stand up to audit",
         "samples with an incomplete chain of custody", "freezer door labels", "give every sample a clear history",
         ["Sample registration", "Chain of custody"]),
        ("research scientists in academic labs", "record experiments in a searchable notebook",
         "write protocols in personal documents nobody can find",
         "links notebook entries to samples and instrument data",
         "experiments can be repeated by anyone in the lab", "time to find a past experiment",
         "paper lab notebooks", "make lab work reproducible by default",
         ["Electronic lab notebook", "Protocol library", "Instrument data import"]),
        ("lab managers at contract research organisations", "book shared instruments fairly",
         "book instruments on a sheet taped to the door", "enforces booking rules and training requirements",
         "instruments are shared without conflict", "instrument utilisation", "email requests to the lab manager",
         "free scientists from admin", ["Instrument booking", "Reagent inventory"]),
        ("bioinformaticians at small biotech firms", "run standard analysis pipelines on sequencing data",
         "rerun scripts by hand for every new batch", "runs versioned pipelines with full provenance",
         "every result can be traced to the code that produced it", "hours from sequencing run to report",
         "ad hoc scripts", "make analysis reproducible and fast", ["Pipeline runs", "Instrument data import"]),
    ],
    "sports": [
        ("coaches of amateur football clubs", "plan training load to avoid injuries",
         "plan sessions from memory and generic templates", "uses wearable data to flag overtraining",
         "fewer players get injured", "training injuries per season", "gut feel on the touchline",
         "help amateur athletes train smart", ["Training load tracking", "Wearable data import"]),
        ("personal trainers", "track client progress between sessions", "lose clients who stop seeing progress",
         "sends clients short video feedback", "clients stay motivated and keep training",
         "client retention after 3 months", "chat groups", "keep clients motivated",
         ["Client progress log", "Video feedback"]),
        ("organisers of local running events", "manage race registrations and results",
         "collect entries by email and bank transfer", "publishes live results from chip timing",
         "events run smoothly from signup to results", "the registration completion rate", "paper entry forms",
         "make local races easy to organise", ["Race registration", "Live results"]),
        ("athletic directors at high schools", "schedule fixtures and facilities across teams",
         "rebuild fixture lists whenever a pitch is unavailable", "resolves facility clashes automatically",
         "every team plays its fixtures without clashes", "fixtures rescheduled per season", "a wall planner",
         "make school sport easy to organise", ["Fixture scheduler", "Team communication"]),
    ],
    "food-delivery": [
        ("owners of independent restaurants", "take delivery orders without paying high commissions",
         "lose a third of each order to marketplace fees", "gives each restaurant its own branded ordering site",
         "restaurants keep more of each order", "commission paid per order", "large delivery marketplaces",
         "help independent restaurants own their customers",
         ["Branded ordering site", "Loyalty program", "Menu management"]),
        ("dark kitchen operators", "predict order volume to prepare the right amount",
         "throw away food at the end of every night", "forecasts demand per dish from weather and events",
         "food waste falls and dishes rarely sell out", "kilograms of food wasted per week",
         "gut-feel prep lists", "cut food waste", ["Demand forecast", "Kitchen display"]),
        ("couriers working for several platforms", "plan routes that combine orders efficiently",
         "waste time waiting at restaurants for orders", "batches nearby pickups for couriers",
         "deliveries arrive hot and couriers earn more per hour", "earnings per hour on the road",
         "switching between platform apps", "make every delivery hour count",
         ["Courier batching", "Delivery tracking"]),
        ("office managers ordering team lunches", "order lunch for a team within budget",
         "collect lunch orders through long chat threads", "lets each employee choose within a company budget",
         "the team eats well and the office stays within budget", "time spent organising each team lunch",
         "a shared spreadsheet of orders", "make team lunches effortless",
         ["Team lunch ordering", "Menu management"]),
    ],
    "developer-tools": [
        ("platform engineers at mid-size SaaS companies", "find flaky tests that slow down CI",
         "rerun failed pipelines until they pass", "tracks test outcomes across thousands of CI runs",
         "builds are faster and more trustworthy", "median CI pipeline duration", "raw CI logs",
         "make engineering feedback loops fast", ["Flaky test detection", "CI run analytics"]),
        ("open-source maintainers", "triage incoming issues and pull requests",
         "drown in notifications from every repository", "labels and routes issues automatically",
         "maintainers respond faster without burning out", "time to first response on issues",
         "raw notification emails", "make open-source maintenance sustainable",
         ["Issue auto-labelling", "Notification digest"]),
        ("mobile developers at small studios", "ship mobile releases with confidence",
         "find crashes only through one-star reviews", "collects crash reports with the exact release and device",
         "releases ship with fewer crashes", "the crash-free session rate", "manual device testing",
         "help teams ship with confidence", ["Crash reporting SDK", "Release health"]),
        ("API product managers", "understand how customers use their APIs", "guess at API usage from server logs",
         "shows API usage per customer and endpoint", "roadmap decisions follow real API usage",
         "the share of roadmap items backed by usage data", "customer interviews alone",
         "base every API decision on real usage", ["API usage analytics", "Access token management"]),
    ],
    "construction": [
        ("site managers at general contractors", "track daily progress against the schedule",
         "fill in paper site diaries at the end of the day", "captures progress with geotagged photos",
         "projects finish closer to schedule", "days of schedule slippage", "weekly progress meetings",
         "give everyone on site one version of the truth",
         ["Daily site diary", "Schedule progress", "Safety inspections"]),
        ("specialist subcontractors", "manage snag lists until handover",
         "chase snags through photos in chat groups", "assigns snags to the responsible trade automatically",
         "handover happens with fewer open snags", "days from snag to sign-off", "printed snag sheets",
         "hand over projects without surprises", ["Snag list", "Subcontractor documents"]),
        ("architects coordinating design changes", "keep drawings and change orders in sync on site",
         "see contractors build from outdated drawings", "pushes the latest approved drawing to every tablet",
         "rework caused by superseded plans disappears", "cost of rework per project", "emailed PDF drawings",
         "keep design intent and site work aligned", ["Drawing control", "Change order tracking"]),
        ("owners of small renovation firms", "quote renovation jobs accurately", "underestimate jobs and lose margin",
         "prices quotes from a library of past jobs", "every job is quoted at a healthy margin",
         "gross margin per job", "spreadsheets of rates", "help small builders quote profitably",
         ["Quote builder", "Change order tracking"]),
    ],
    "climate": [
        ("sustainability leads at mid-size manufacturers", "measure the company carbon footprint",
         "estimate emissions once a year from spreadsheets",
         "calculates emissions from invoices and activity data automatically",
         "emissions are measured monthly instead of yearly", "tonnes of CO2 equivalent per unit produced",
         "annual consultant studies", "make carbon accounting continuous",
         ["Activity data import", "Emission calculation", "Emissions by site"]),
        ("finance teams preparing ESG disclosures", "prepare climate disclosures for investors",
         "assemble disclosures from scattered sources at the last minute",
         "maps data to the major disclosure frameworks", "disclosures are ready on time and stand up to audit",
         "days needed to prepare the annual disclosure", "consultant-led audits",
         "make climate reporting as reliable as financial reporting",
         ["Disclosure mapping", "Source data audit trail"]),
        ("procurement managers at retail groups", "collect emissions data from suppliers",
         "send supplier surveys that rarely come back", "gives suppliers a simple portal to share data",
         "supplier data coverage grows each quarter", "the share of spend with supplier-specific data",
         "email questionnaires", "bring suppliers into the reduction effort",
         ["Supplier portal", "Supplier data scoring"]),
        ("city climate officers", "track progress on a reduction plan",
         "lose sight of reduction targets between reports",
         "models the impact of reduction actions before they are funded",
         "every funded action moves the city toward its target", "progress against the reduction target",
         "static climate action documents", "turn climate targets into a plan",
         ["Reduction planner", "Target tracking"]),
    ],
    "pharmacy": [
        ("independent community pharmacists", "manage repeat prescriptions without queues",
         "handle repeat requests by phone and paper slips", "lets patients request repeats from their phone",
         "patients collect prescriptions without waiting", "average collection wait time", "walk-in requests",
         "make medicines simple to manage", ["Repeat prescription requests", "Dispensing queue"]),
        ("hospital pharmacy technicians", "keep medication stock within expiry", "find expired stock during audits",
         "tracks batches and expiry dates by barcode", "expired stock write-offs shrink",
         "the value of stock written off each quarter", "manual stock checks", "cut waste in the pharmacy",
         ["Stock expiry tracking", "Supplier ordering", "Controlled drugs register"]),
        ("patients managing several medications", "take the right dose at the right time",
         "keep track of pills with handwritten notes", "sends dose reminders and warns about interactions",
         "missed doses become rare", "the share of doses taken on time", "pill boxes and phone alarms",
         "keep every dose on time", ["Dose reminders", "Interaction warnings"]),
        ("care home nurses", "run medication rounds safely", "record rounds on paper charts",
         "checks each dose against the prescription by barcode", "wrong doses become rare",
         "medication administration errors", "handwritten medication records", "keep every dose safe",
         ["Barcode medication rounds", "Interaction warnings"]),
    ],
}


# Further capabilities that fit each persona (besides its core ones), in PERSONAS order.
PERSONA_EXTRAS: dict[str, list[list[str]]] = {
    "fintech": [
        ["Categorize transactions", "Show multi-currency balances", "Export to accounting software",
         "Keep an audit trail of changes", "Forecast weekly cash position"],
        ["Connect bank accounts", "Send invoice reminders", "Show multi-currency balances", "Export to accounting software"],
        ["Connect bank accounts", "Match payouts to deposits", "Forecast weekly cash position",
         "Keep an audit trail of changes", "Show multi-currency balances"],
        ["Connect bank accounts", "Categorize transactions", "Forecast weekly cash position"],
    ],
    "healthcare-scheduling": [
        ["Appointment reminders", "EHR integration", "No-show reporting", "Follow-up booking at checkout"],
        ["EHR integration", "No-show reporting", "Online self-booking"],
        ["Cancellation waitlist", "Online self-booking", "Follow-up booking at checkout"],
        ["Appointment reminders", "Cancellation waitlist", "No-show reporting"],
    ],
    "logistics": [
        ["Driver mobile app", "Live ETA for recipients", "Fleet utilization reporting", "Electronic proof of delivery"],
        ["Exception alerts", "Carrier rate comparison", "Yard overview"],
        ["Optimize daily routes", "Electronic proof of delivery", "Exception alerts", "Fleet utilization reporting"],
        ["Optimize daily routes", "Live ETA for recipients", "Fleet utilization reporting", "Carrier rate comparison"],
    ],
    "edtech": [
        ["Curriculum mapping", "Parent progress reports", "Lesson planner", "Rubric-based grading assistant"],
        ["Offline mode", "Study plan"],
        ["Plagiarism similarity check", "Grade export"],
        ["Adaptive practice sets", "Parent progress reports"],
    ],
    "agritech": [
        ["SMS advisories", "Offline field data capture", "Fertilizer logbook"],
        ["Offline field data capture", "Plot planning calendar", "Co-op benchmarking"],
        ["Irrigation schedule recommendations", "Disease detection from photos", "Offline field data capture"],
        ["Import soil sensor readings", "Irrigation schedule recommendations", "Disease detection from photos"],
    ],
    "hr": [
        ["Manager nudges", "Headcount reporting", "Leave tracking"],
        ["Document e-signature", "Manager nudges", "Headcount reporting"],
        ["Headcount reporting", "Onboarding checklists"],
        ["Document e-signature", "Manager nudges"],
    ],
    "retail": [
        ["Supplier catalogue import", "Sales dashboard", "Online stock sync"],
        ["Point-of-sale integration", "Basket analysis", "Reorder suggestions"],
        ["Stock count on mobile", "Sales dashboard", "Promotion planner", "Reorder suggestions"],
        ["Sales dashboard", "Promotion planner", "Reorder suggestions"],
    ],
    "energy": [
        ["Peak demand alerts", "Device control", "Carbon reporting", "Tariff-aware scheduling"],
        ["Smart meter data import", "Device control"],
        ["Smart meter data import", "Overnight waste report", "Carbon reporting"],
        ["Carbon reporting", "Battery charge planning"],
    ],
    "legal": [
        ["Matter dashboard", "Contract approval workflow"],
        ["Hearing bundle builder", "Time recording", "Template library", "Secure client portal"],
        ["Matter dashboard", "Deadline calculator", "Template library"],
        ["Deadline calculator", "Client intake form", "Matter dashboard", "Template library"],
    ],
    "travel": [
        ["Budget tracking", "Traveller profiles", "Disruption alerts"],
        ["Shared itinerary", "Tour availability calendar"],
        ["Disruption alerts", "Traveller profiles"],
        ["Shared itinerary", "Budget tracking", "Approval workflow"],
    ],
    "insurance": [
        ["Claims audit log"],
        ["Plain-language cover summary", "Client document vault"],
        ["Claim intake", "Multi-insurer quoting"],
        ["Document extraction", "Referral rules"],
    ],
    "public-sector": [
        ["Status tracking for residents", "Decision audit trail", "Multilingual content", "Performance reporting"],
        ["Caseworker queue", "Performance reporting", "Multilingual content"],
        ["Multilingual content", "Performance reporting"],
        ["Performance reporting", "Multilingual content"],
    ],
    "gaming": [
        ["Live config updates", "Player reports"],
        ["Engine SDK", "Live config updates"],
        ["Funnel analytics", "Engine SDK", "Session heatmaps"],
        ["Real-time chat moderation", "Team registration"],
    ],
    "media": [
        ["Newsletter builder", "Paywall rules", "Churn risk scores"],
        ["Newsletter builder", "Podcast feed publishing"],
        ["Client review links"],
        ["Audience dashboard", "Story conversion tracking"],
    ],
    "cybersecurity": [
        ["Ticketing integration", "Phishing simulation", "Access review"],
        ["Asset inventory", "Vulnerability prioritisation"],
        ["Asset inventory", "Vulnerability prioritisation", "Phishing simulation"],
        ["Asset inventory", "Vulnerability prioritisation", "Ticketing integration", "Alert correlation"],
    ],
    "real-estate": [
        ["Lease document storage"],
        ["True cost estimate", "Offer tracking", "Saved search alerts"],
        ["Listing matching", "Saved search alerts", "Offer tracking"],
        ["Maintenance requests", "Contractor directory"],
    ],
    "manufacturing": [
        ["Live OEE board", "Maintenance scheduler", "Spare parts tracking"],
        ["PLC data collection", "Shift handover notes"],
        ["Failure prediction", "PLC data collection", "Live OEE board"],
        ["PLC data collection", "Root cause analysis"],
    ],
    "nonprofit": [
        ["Impact dashboard"],
        ["Volunteer hours log"],
        ["Grant calendar", "Funder report builder"],
        ["Funder report builder"],
    ],
    "hospitality": [
        ["Review theme analysis", "Guest profiles", "Housekeeping board"],
        ["Guest profiles", "Review theme analysis"],
        ["Review theme analysis"],
        ["Channel manager sync", "Dynamic room pricing", "Guest chat assistant"],
    ],
    "automotive": [
        ["Service planning"],
        ["Vehicle history", "Digital job cards"],
        ["Charger fault reporting"],
        ["Stock ageing report"],
    ],
    "telecom": [
        ["Network capacity forecast"],
        ["Outage map"],
        ["Field technician dispatch", "Outage map"],
        ["Device inventory"],
    ],
    "biotech-lab": [
        ["Instrument data import", "Reagent inventory", "Protocol library"],
        ["Sample registration", "Instrument booking", "Reagent inventory"],
        ["Sample registration", "Chain of custody"],
        ["Electronic lab notebook", "Sample registration"],
    ],
    "sports": [
        ["Team communication", "Video feedback"],
        ["Wearable data import", "Training load tracking"],
        ["Bib and chip assignment"],
        ["Facility booking"],
    ],
    "food-delivery": [
        ["Delivery tracking", "Kitchen display"],
        ["Menu management", "Delivery tracking"],
        ["Earnings summary"],
        ["Delivery tracking"],
    ],
    "developer-tools": [
        ["Notification digest", "Access token management"],
        ["Flaky test detection", "CI run analytics"],
        ["Notification digest"],
        ["API changelog notices"],
    ],
    "construction": [
        ["Subcontractor documents", "Drawing control", "Snag list"],
        ["Daily site diary", "Drawing control"],
        ["Snag list", "Schedule progress"],
        ["Daily site diary", "Snag list"],
    ],
    "climate": [
        ["Target tracking", "Source data audit trail"],
        ["Emission calculation", "Target tracking"],
        ["Emission calculation", "Source data audit trail"],
        ["Emission calculation", "Source data audit trail"],
    ],
    "pharmacy": [
        ["Interaction warnings", "Stock expiry tracking", "Supplier ordering"],
        ["Dispensing queue"],
        ["Repeat prescription requests"],
        ["Dose reminders", "Controlled drugs register"],
    ],
}


def _attach_personas() -> None:
    for dom in DOMAINS:
        titles = [title for title, _ in dom["caps"]]
        dom["personas"] = []
        assert len(PERSONAS[dom["slug"]]) == len(PERSONA_EXTRAS[dom["slug"]]), dom["slug"]
        for row, extra in zip(PERSONAS[dom["slug"]], PERSONA_EXTRAS[dom["slug"]]):
            persona = dict(zip(PERSONA_FIELDS, row))
            persona["extra"] = extra + [t for t in dom["shared"] if t not in extra and t not in persona["core"]]
            missing = [t for t in persona["core"] + persona["extra"] if t not in titles]
            assert not missing, f"{dom['slug']}: unknown capabilities {missing}"
            assert len(set(persona["core"] + extra)) >= 3, f"{dom['slug']}: fewer than 3 capabilities fit"
            dom["personas"].append(persona)


_attach_personas()

# (type phrase with article, type without article, short noun)
PRODUCT_TYPES = [
    ("A mobile app", "mobile app", "app"),
    ("A web platform", "web platform", "platform"),
    ("A SaaS tool", "SaaS tool", "tool"),
    ("A tablet app", "tablet app", "app"),
    ("A web app", "web app", "app"),
    ("A cloud service", "cloud service", "service"),
    ("A self-service portal", "self-service portal", "portal"),
    ("A chat-based assistant", "chat-based assistant", "assistant"),
    ("A lightweight web tool", "lightweight web tool", "tool"),
    ("An online workspace", "online workspace", "workspace"),
]

# Product-level constraints (3rd person singular verb phrases), used as an optional
# third sentence of the concept: "It {context}."
CONTEXTS = [
    "starts with a pilot in one region",
    "is designed for phones first",
    "offers a free tier for the smallest teams",
    "must meet strict data privacy rules",
    "launches first in two countries",
    "is sold through existing industry associations",
    "needs to work for teams without an IT department",
    "has to integrate with the tools people already use",
]
CONTEXT_LEADS = ["Commercially, the {noun} {ctx}.", "For launch, the {noun} {ctx}.", "One constraint shapes the plan: the {noun} {ctx}."]

# Concept templates; {Type} is "A mobile app", {U} users, {J} job, {P} problem, {D} diff, {A} alt.
CONCEPT_TEMPLATES = [
    "{Type} that lets {U} {J}. Today they {P}; the product {D}.",
    "{Type} for {U} who today {P}. It helps them {J} and {D}.",
    "{Type} that helps {U} {J}. Unlike {A}, it {D}, which matters because they currently {P}.",
    "{Ucap} today {P}. {Type} would let them {J}, and it {D}.",
    "{Type} for {U} that helps them {J}; it {D}, because today they {P}.",
]

# Existing (previous) vision templates, 1-2 sentences; an optional outcome sentence may follow.
EXISTING_TEMPLATES = [
    "Give {U} one place to {J}. We want to {M}.",
    "{Type} for {U}, built to {M}.",
    "Our aim is to {M}. The product should let {U} {J}, replacing {A}.",
    "We want to {M} for {U}.",
]

SEN_PRIORITY = ("must", "should", "could")
CHANGES_FLAWS = ("vague_must", "too_many_musts", "no_must", "core_could")

# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------

_DIGIT = re.compile(r"\d")
# The same tokenisation as pipeline/metric.py (content words: 4+ chars, not a stop word).
_WORD = re.compile(r"[a-z][a-z0-9'-]+")
_STOP = frozenset(
    "the and for with that this from into over your their they them will have has are was were been "
    "which while where when what who whom whose about across after before under above a an of to in on "
    "by at as is it its be or not but all any can our we you app apps platform tool system product".split()
)


def content_words(text: str) -> list[str]:
    return [w for w in _WORD.findall((text or "").lower()) if len(w) >= 4 and w not in _STOP]


def cap_first(s: str) -> str:
    return s[:1].upper() + s[1:]


def lc_first(s: str) -> str:
    """Lower-case the first letter unless the word is an acronym (SMS, EHR, OEE...)."""
    if len(s) > 1 and s[1].isupper():
        return s
    return s[:1].lower() + s[1:]


def join_ids(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return ", ".join(items[:-1]) + " and " + items[-1]


def weighted(rng: random.Random, pairs: list[tuple]) -> object:
    values = [v for v, _ in pairs]
    weights = [w for _, w in pairs]
    return rng.choices(values, weights=weights, k=1)[0]


def has_number(texts: list[str]) -> bool:
    return any(_DIGIT.search(t) for t in texts)


def trigram_distinct_ratio(text: str) -> float:
    """pipeline/metric.py's no_repetition input: distinct / all lower-cased whitespace trigrams."""
    words = text.lower().split()
    trigrams = list(zip(words, words[1:], words[2:]))
    return len(set(trigrams)) / len(trigrams) if trigrams else 0.0


def max_trigram_count(text: str) -> int:
    words = re.findall(r"[a-z0-9'-]+", text.lower())
    counts: dict[tuple, int] = {}
    for tri in zip(words, words[1:], words[2:]):
        counts[tri] = counts.get(tri, 0) + 1
    return max(counts.values(), default=0)


# ---------------------------------------------------------------------------------------
# YAML writing (by hand, verified by the self-check)
# ---------------------------------------------------------------------------------------

_PLAIN_SAFE = re.compile(r"^[A-Za-z][A-Za-z0-9 ,.'%()/-]*$")
_YAML_RESERVED = re.compile(r"^(y|n|yes|no|on|off|true|false|null)$", re.I)


def yaml_scalar(value: str) -> str:
    """A plain scalar when it is unambiguous, else a double-quoted one (JSON escaping is valid YAML)."""
    plain_ok = (
        _PLAIN_SAFE.match(value) is not None
        and not _YAML_RESERVED.match(value)
        and ": " not in value
        and " #" not in value
        and not value.endswith(":")
        and value == value.strip()
    )
    return value if plain_ok else json.dumps(value, ensure_ascii=True)


def requirements_to_yaml(reqs: list[dict]) -> str:
    lines = ["requirements:"]
    for r in reqs:
        lines.append(f"  - id: {yaml_scalar(r['id'])}")
        lines.append(f"    title: {yaml_scalar(r['title'])}")
        lines.append(f"    priority: {r['priority']}")
        lines.append("    acceptance_criteria:")
        for c in r["acceptance_criteria"]:
            lines.append(f"      - {yaml_scalar(c)}")
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------
# Record parts
# ---------------------------------------------------------------------------------------


def make_requirements(rng: random.Random, dom: dict, persona: dict, verdict: str | None, flaw: str | None) -> list[dict]:
    """3-7 requirements: the persona's core capabilities plus others that fit it, in random order.

    Core capabilities lean to must, the others to should/could."""
    core = [c for c in dom["caps"] if c[0] in persona["core"]]
    others = [c for c in dom["caps"] if c[0] in persona["extra"]]
    n = min(weighted(rng, [(3, 15), (4, 25), (5, 27), (6, 18), (7, 15)]), len(core) + len(others))
    caps = core + rng.sample(others, max(0, n - len(core)))
    rng.shuffle(caps)
    prefix = rng.choice(dom["prefixes"])
    number = rng.choice([1, 1, 1, 2, 4, 5, 10, 11, 12, 14, 20, 21, 27, 30, 33, 42, 101, 110, 120])
    reqs = []
    for title, criteria in caps:
        k = weighted(rng, [(1, 20), (2, 45), (3, 35)])
        picked = sorted(rng.sample(range(len(criteria)), k))
        is_core = title in persona["core"]
        odds = [("must", 60), ("should", 35), ("could", 5)] if is_core else [("must", 20), ("should", 45), ("could", 35)]
        reqs.append(
            {
                "id": f"{prefix}-{number:03d}",
                "title": title,
                "priority": weighted(rng, odds),
                "acceptance_criteria": [criteria[j] for j in picked],
                "_all_criteria": criteria,
                "_core": is_core,
            }
        )
        number += 1 if rng.random() < 0.8 else rng.randint(2, 4)
    if not any(r["priority"] == "must" for r in reqs) and rng.random() < 0.85:
        rng.choice(reqs)["priority"] = "must"

    if verdict == "approved":
        _repair_for_approval(rng, reqs)
    elif verdict == "changes":
        _inject_flaw(rng, reqs, flaw)
    return reqs


def _musts(reqs: list[dict]) -> list[dict]:
    return [r for r in reqs if r["priority"] == "must"]


def _too_many_musts(reqs: list[dict]) -> bool:
    """A flaw worth a 'Changes requested': more than half (rounded up) of the items are must."""
    return len(_musts(reqs)) > (len(reqs) + 1) // 2


def _approvable_musts(n: int) -> int:
    """The most must items an approved list carries: 2 of 3-5, 3 of 6-7."""
    return 2 if n <= 5 else 3


def _vague_musts(reqs: list[dict]) -> list[dict]:
    """Must items whose only acceptance criterion has no measurable threshold."""
    return [r for r in _musts(reqs) if len(r["acceptance_criteria"]) == 1 and not has_number(r["acceptance_criteria"])]


def _core_coulds(reqs: list[dict]) -> list[dict]:
    """Capabilities the concept depends on, marked could."""
    return [r for r in reqs if r["_core"] and r["priority"] == "could"]


def major_flaws(reqs: list[dict]) -> list[str]:
    flaws = []
    if not _musts(reqs):
        flaws.append("no_must")
    if _too_many_musts(reqs):
        flaws.append("too_many_musts")
    if _vague_musts(reqs):
        flaws.append("vague_must")
    if _core_coulds(reqs):
        flaws.append("core_could")
    return flaws


def _add_criterion(r: dict) -> None:
    """Give a requirement one more criterion (a measurable one when there is one), keeping pool order."""
    extra = [c for c in r["_all_criteria"] if c not in r["acceptance_criteria"]]
    if not extra:
        return
    add = ([c for c in extra if _DIGIT.search(c)] or extra)[0]
    r["acceptance_criteria"] = [c for c in r["_all_criteria"] if c in r["acceptance_criteria"] or c == add]


def _demote_musts(rng: random.Random, reqs: list[dict], limit: int, keep: dict | None = None) -> None:
    """Demote must items (the non-core ones first) to should until at most `limit` remain."""
    while len(_musts(reqs)) > limit:
        candidates = [r for r in _musts(reqs) if r is not keep]
        non_core = [r for r in candidates if not r["_core"]]
        rng.choice(non_core or candidates)["priority"] = "should"


def _repair_for_approval(rng: random.Random, reqs: list[dict]) -> None:
    """Make the list one a Product Owner approves: core items not could, 1-3 musts, testable musts."""
    for r in _core_coulds(reqs):
        r["priority"] = "should"
    if not _musts(reqs):
        core = [r for r in reqs if r["_core"]]
        rng.choice(core or reqs)["priority"] = "must"
    _demote_musts(rng, reqs, _approvable_musts(len(reqs)))
    for r in _vague_musts(reqs):
        _add_criterion(r)


def _inject_flaw(rng: random.Random, reqs: list[dict], flaw: str) -> None:
    """Start from an approvable list, then introduce the one flaw the review will call out."""
    _repair_for_approval(rng, reqs)
    if flaw == "vague_must":
        candidates = [r for r in reqs if any(not _DIGIT.search(c) for c in r["_all_criteria"])]
        if not candidates:
            flaw = "too_many_musts"
        else:
            core = [r for r in candidates if r["_core"]]
            r = rng.choice(core or candidates)
            r["priority"] = "must"
            r["acceptance_criteria"] = [rng.choice([c for c in r["_all_criteria"] if not _DIGIT.search(c)])]
            _demote_musts(rng, reqs, _approvable_musts(len(reqs)), keep=r)
    if flaw == "too_many_musts":
        keep = rng.choice([i for i, r in enumerate(reqs) if not r["_core"]] or [0]) if len(reqs) >= 4 else -1
        for i, r in enumerate(reqs):
            r["priority"] = "must" if i != keep else rng.choice(["should", "could"])
        for r in _vague_musts(reqs):
            _add_criterion(r)
    if flaw == "no_must":
        for r in _musts(reqs):
            r["priority"] = "should" if r["_core"] else rng.choice(["should", "could"])
    if flaw == "core_could":
        r = rng.choice([x for x in reqs if x["_core"]])
        r["priority"] = "could"
        if not _musts(reqs):
            others = [x for x in reqs if x is not r]
            rng.choice([x for x in others if x["_core"]] or others)["priority"] = "must"


def make_concept(rng: random.Random, dom: dict, persona: dict, used: set) -> tuple[str, dict]:
    for _ in range(500):
        type_phrase, type_core, type_noun = rng.choice(PRODUCT_TYPES)
        template = rng.choice(CONCEPT_TEMPLATES)
        context = rng.choice(CONTEXTS) if rng.random() < 0.45 else None
        text = template.format(
            Type=type_phrase, U=persona["users"], Ucap=cap_first(persona["users"]), J=persona["job"],
            P=persona["problem"], D=persona["diff"], A=persona["alt"],
        )
        if context:
            text += f" It {context}."
        if text not in used:
            used.add(text)
            return text, {"type_phrase": type_phrase, "type_core": type_core, "type_noun": type_noun, "context": context}
    raise RuntimeError(f"could not find a new concept for {dom['slug']}")


def make_existing_vision(rng: random.Random, persona: dict, kind: dict) -> str:
    template = rng.choice(EXISTING_TEMPLATES)
    text = template.format(
        U=persona["users"], J=persona["job"], M=persona["aim"], A=persona["alt"], Type=kind["type_phrase"]
    )
    if text.count(".") < 2 and rng.random() < 0.35:
        text += f" Success would mean that {persona['outcome']}."
    return text


# ---------------------------------------------------------------------------------------
# Reference outputs
# ---------------------------------------------------------------------------------------


def _req_sentence(rng: random.Random, reqs: list[dict], with_titles: bool) -> str:
    groups = {p: [r for r in reqs if r["priority"] == p] for p in SEN_PRIORITY}

    def ids(p: str) -> str:
        items = groups[p]
        if with_titles and p == "must" and len(items) <= 2:
            return join_ids([f"{r['id']} ({lc_first(r['title'])})" for r in items])
        return join_ids([r["id"] for r in items])

    must_lead = [
        "The first release centers on {x}",
        "Scope starts with the must-have work in {x}",
        "We begin with {x}",
        "Day one depends on {x}",
    ]
    should_follow = ["followed by {x} at should priority", "with {x} coming next", "then {x} once the core is stable"]
    could_follow = ["leaving {x} for later", "with {x} kept optional", "and {x} only if time allows"]
    should_lead = ["As written, the release leads with {x} at should priority", "The plan opens with {x}, marked should"]

    parts = []
    if groups["must"]:
        parts.append(rng.choice(must_lead).format(x=ids("must")))
        if groups["should"]:
            parts.append(rng.choice(should_follow).format(x=ids("should")))
        if groups["could"]:
            parts.append(rng.choice(could_follow).format(x=ids("could")))
        return ", ".join(parts) + "."
    if groups["should"]:
        parts.append(rng.choice(should_lead).format(x=ids("should")))
        if groups["could"]:
            parts.append(rng.choice(could_follow).format(x=ids("could")))
        return ", ".join(parts) + "."
    return rng.choice(["All of {x} are marked could for now.", "The scope lists {x}, each marked could."]).format(x=ids("could"))


def make_vision(rng: random.Random, persona: dict, kind: dict, reqs: list[dict], existing: str) -> str:
    U, J, P, D = persona["users"], persona["job"], persona["problem"], persona["diff"]
    O, K, A, M = persona["outcome"], persona["kpi"], persona["alt"], persona["aim"]
    t_phrase = lc_first(kind["type_phrase"])
    core, noun = kind["type_core"], kind["type_noun"]
    variant = rng.randrange(4)
    evo = None
    if existing:
        evo = rng.choice([
            "We keep the earlier aim to {M} and make it concrete for this release.",
            "The previous vision set out to {M}; that still holds, and this version sharpens how we get there.",
            "This evolves our earlier vision: we still want to {M}, now with a clearer scope.",
        ]).format(M=M)
    ctx = rng.choice(CONTEXT_LEADS).format(noun=noun, ctx=kind["context"]) if kind["context"] else None
    titles_first = rng.random() < 0.6

    def build(with_titles: bool, with_ctx: bool, with_kpi: bool, with_alt: bool) -> str:
        req = _req_sentence(random.Random(rng_state), reqs, with_titles)
        if variant == 0:
            s = [f"This {core} is for {U}, who today {P}.", f"It helps them {J} so that {O}."]
            s.append(f"Unlike {A}, it {D}." if with_alt else f"What makes it different is that it {D}.")
            s += [evo, ctx if with_ctx else None, req]
            s.append(f"We will judge success by {K}." if with_kpi else None)
        elif variant == 1:
            s = [f"For {U} who today {P}, we will build {t_phrase} that enables them to {J} so that {O}."]
            s.append(f"Its edge over {A} is simple: it {D}." if with_alt else f"Its edge is simple: it {D}.")
            s += [evo, req, ctx if with_ctx else None]
            s.append(f"Progress will be measured by {K}." if with_kpi else None)
        elif variant == 2:
            s = [f"Our vision is {t_phrase} for {U} that helps them {J}."]
            s.append(f"Today they {P}, a gap that {A} cannot close." if with_alt else f"Today they {P}.")
            s.append(f"The {noun} will reduce that friction because it {D}, so that {O}.")
            s += [evo, req, ctx if with_ctx else None]
            s.append(f"We will track {K} to improve the product release by release." if with_kpi else None)
        else:
            s = [f"We are building {t_phrase} for {U}; it helps them {J}."]
            s.append(f"Right now they {P}, while {A} cannot keep up." if with_alt else f"Right now they {P}.")
            s.append(f"What sets it apart is that it {D}, so that {O}.")
            s += [req, evo, ctx if with_ctx else None]
            s.append(f"We will measure progress by {K} as adoption grows." if with_kpi else None)
        return " ".join(x for x in s if x)

    rng_state = rng.random()  # the requirement sentence's own choices, stable across the fallbacks
    options = [
        (titles_first, True, True, True),
        (False, True, True, True),
        (False, False, True, True),
        (False, False, False, True),
        (False, False, False, False),
    ]
    text = ""
    for opt in options:
        text = build(*opt)
        if len(text) <= VISION_MAX_CHARS:
            break
    return text


def make_review(rng: random.Random, persona: dict, reqs: list[dict], verdict: str) -> str:
    by_p = {p: [r for r in reqs if r["priority"] == p] for p in SEN_PRIORITY}
    counts = {p: len(v) for p, v in by_p.items()}

    def must_good(r: dict) -> str:
        n = len(r["acceptance_criteria"])
        word = {1: "one", 2: "two", 3: "three"}[n]
        criteria = "criterion is" if n == 1 else "criteria are"
        extra = " and measurable" if has_number(r["acceptance_criteria"]) else ""
        return rng.choice([
            f"- {r['id']} (must) is well scoped; its {word} {criteria} testable{extra}, so keep it as a release gate.",
            f"- {r['id']} ({lc_first(r['title'])}, must) is ready for the first sprint; its {word} {criteria} clear{extra}.",
        ])

    def crit_good(r: dict, crit: str | None = None) -> str:
        crit = lc_first(crit or r["acceptance_criteria"][-1])
        return f"- {r['id']} ({r['priority']}): the check that {crit} gives QA a clear pass or fail."

    def balance() -> str:
        mix = join_ids([f"{counts[p]} {p}" for p in SEN_PRIORITY if counts[p]])
        return rng.choice([
            f"- The mix of {mix} items keeps the first release small.",
            f"- Priorities look right: {mix}, so the first release stays focused.",
        ])

    def could_defer(r: dict) -> str:
        return rng.choice([
            f"- {r['id']} is a could and can slip to a later release without hurting the core promise.",
            f"- Keep {r['id']} as a could; build it only if the must items land early.",
        ])

    def should_next(r: dict, anchor: dict) -> str:
        return f"- {r['id']} (should) fits the second increment once {anchor['id']} is stable."

    def nit(r: dict) -> str:
        return f"- Minor: give {r['id']} ({r['priority']}) a numeric target during refinement; this does not block approval."

    def vague_must(r: dict) -> str:
        return rng.choice([
            f"- {r['id']} (must) has one criterion and no measurable threshold; add a time, volume or percentage target before it gates the release.",
            f"- {r['id']} is a must but its only criterion cannot fail in a test; state a concrete threshold and a failure case.",
        ])

    criticised: list[dict] = []

    def too_many() -> str:
        musts = [r for r in by_p["must"] if not r["_core"]] + [r for r in by_p["must"] if r["_core"]]
        demote = musts[:2] if len(musts) >= 4 else musts[:1]
        demote = sorted(demote, key=lambda r: r["id"])
        criticised.extend(demote)
        return (
            f"- {counts['must']} of {len(reqs)} requirements are must, which leaves no room to cut scope; "
            f"demote {join_ids([r['id'] for r in demote])} to should."
        )

    def no_must(r: dict) -> str:
        return f"- Nothing is marked must, so the release has no clear gate; promote {r['id']} ({lc_first(r['title'])}) to must."

    def missing_diff() -> str | None:
        diff_words = set(content_words(persona["diff"]))
        req_words = set(content_words(" ".join(r["title"] + " " + " ".join(r["acceptance_criteria"]) for r in reqs)))
        if diff_words & req_words:
            return None
        return "- The differentiator in the concept has no requirement of its own; add one as a should with testable criteria."

    def core_could(r: dict) -> str:
        return rng.choice([
            f"- {r['id']} ({lc_first(r['title'])}) is marked could, yet the concept depends on it; raise it to must.",
            f"- Raise {r['id']} ({lc_first(r['title'])}) from could to must; the main promise of the concept depends on it.",
        ])

    def failure_path(r: dict) -> str:
        return f"- {r['id']} ({r['priority']}) only covers the happy path; add a criterion for failures and who is notified."

    bullets: list[str] = []
    optional: list[str] = []
    if verdict == "approved":
        musts = sorted(by_p["must"], key=lambda r: -len(r["acceptance_criteria"]))
        lead = musts[0]
        bullets.append(must_good(lead))
        rest = [r for r in reqs if r is not lead]
        rng.shuffle(rest)
        pool = []
        numeric = [(r, c) for r in rest for c in r["acceptance_criteria"] if _DIGIT.search(c)]
        if numeric:
            r, c = rng.choice(numeric)
            pool.append((r["id"], crit_good(r, c)))
        pool.append((None, balance()))
        coulds = [r for r in rest if r["priority"] == "could"]
        if coulds:
            pool.append((coulds[0]["id"], could_defer(coulds[0])))
        shoulds = [r for r in rest if r["priority"] == "should"]
        if shoulds:
            pool.append((shoulds[0]["id"], should_next(shoulds[0], lead)))
        vague = [r for r in rest if r["priority"] != "must" and not has_number(r["acceptance_criteria"])]
        if vague and rng.random() < 0.4:
            pool.append((vague[0]["id"], nit(vague[0])))
        rng.shuffle(pool)
        seen = {lead["id"]}
        picked = []
        for rid, bullet in pool:
            if rid is not None and rid in seen:
                continue
            seen.add(rid)
            picked.append(bullet)
        bullets.append(picked[0])
        optional += picked[1:3]
        header = "Verdict: Approved"
    else:
        flaws = major_flaws(reqs)
        if "vague_must" in flaws:
            bullets.append(vague_must(_vague_musts(reqs)[0]))
        if "too_many_musts" in flaws:
            bullets.append(too_many())
        if "no_must" in flaws:
            bullets.append(no_must(([r for r in reqs if r["_core"]] or reqs)[0]))
        if "core_could" in flaws:
            bullets.append(core_could(_core_coulds(reqs)[0]))
        md = missing_diff()
        if md:
            optional.append(md)
        singles = [r for r in reqs if len(r["acceptance_criteria"]) == 1 and r not in _vague_musts(reqs)]
        if singles:
            optional.append(failure_path(rng.choice(singles)))
        rng.shuffle(optional)
        flawed = _vague_musts(reqs) + _core_coulds(reqs) + criticised
        good = [
            (r, c) for r in reqs if r not in flawed for c in r["acceptance_criteria"] if _DIGIT.search(c)
        ]
        solid_musts = [r for r in by_p["must"] if len(r["acceptance_criteria"]) >= 2 and r not in flawed]
        if good:
            bullets.append(crit_good(*rng.choice(good)))
        elif solid_musts:
            bullets.append(must_good(solid_musts[0]))
        elif optional:
            bullets.append(optional.pop())
        else:
            bullets.append(could_defer(rng.choice(by_p["could"])) if by_p["could"] else failure_path(reqs[-1]))
        header = "Verdict: Changes requested"

    def render(items: list[str]) -> str:
        return "\n".join([header] + items)

    text = render(bullets)
    for extra in optional:
        if len(bullets) >= 5:
            break
        candidate = render(bullets + [extra]) if verdict == "approved" else render(bullets[:-1] + [extra] + bullets[-1:])
        if len(candidate) > REVIEW_MAX_CHARS:
            continue
        if verdict == "approved":
            bullets = bullets + [extra]
        else:
            bullets = bullets[:-1] + [extra] + bullets[-1:]
        text = candidate
        if verdict == "approved" and len(bullets) >= 3 and rng.random() < 0.5:
            break
    return text


# ---------------------------------------------------------------------------------------
# Generation
# ---------------------------------------------------------------------------------------


def generate() -> dict[str, list[dict]]:
    rng = random.Random(SEED)
    used_concepts: set[str] = set()
    persona_order = {d["slug"]: rng.sample(range(len(d["personas"])), len(d["personas"])) for d in DOMAINS}
    persona_count = {d["slug"]: 0 for d in DOMAINS}
    out: dict[str, list[dict]] = {}
    for split, n, with_outputs in SPLITS:
        order = rng.sample(DOMAINS, len(DOMAINS))
        domain_seq = [order[i % len(order)] for i in range(n)]
        rng.shuffle(domain_seq)
        empty = sorted(rng.sample(range(n), round(EMPTY_VISION_SHARE * n)))
        changes = sorted(rng.sample(range(n), round(CHANGES_SHARE * n))) if with_outputs else []
        records = []
        for i in range(n):
            dom = domain_seq[i]
            slug = dom["slug"]
            p_index = persona_order[slug][persona_count[slug] % len(persona_order[slug])]
            persona_count[slug] += 1
            persona = dom["personas"][p_index]
            concept, kind = make_concept(rng, dom, persona, used_concepts)
            verdict = None
            flaw = None
            if with_outputs:
                verdict = "changes" if i in changes else "approved"
                flaw = rng.choice(CHANGES_FLAWS) if verdict == "changes" else None
            reqs = make_requirements(rng, dom, persona, verdict, flaw)
            existing = "" if i in empty else make_existing_vision(rng, persona, kind)
            record = {
                "id": f"{split}-{i + 1:04d}",
                "domain": slug,
                "concept": concept,
                "requirements_yaml": requirements_to_yaml(reqs),
                "existing_vision": existing,
            }
            if with_outputs:
                record["product_vision"] = make_vision(rng, persona, kind, reqs, existing)
                record["product_owner_review"] = make_review(rng, persona, reqs, verdict)
            records.append(record)
        out[split] = sorted(records, key=lambda r: r["id"])
    return out


# ---------------------------------------------------------------------------------------
# Self-check
# ---------------------------------------------------------------------------------------


def _check_reference(rec: dict, ids: list[str], problems: list[str]) -> None:
    rid = rec["id"]
    vision, review = rec["product_vision"], rec["product_owner_review"]
    for name, text, limit in (("product_vision", vision, VISION_MAX_CHARS), ("product_owner_review", review, REVIEW_MAX_CHARS)):
        if not text.isascii() or FORBIDDEN & set(text) or not ALLOWED_CHARS.match(text):
            problems.append(f"{rid}: {name} has characters outside the allowed set")
        if not FIRST_CHARS.match(text):
            problems.append(f"{rid}: {name} starts with a character the grammar refuses")
        if len(text) > limit:
            problems.append(f"{rid}: {name} is {len(text)} characters (max {limit})")
        if max_trigram_count(text) > 2:
            problems.append(f"{rid}: {name} repeats a 3-word phrase more than twice")
    words = len(vision.split())
    if not VISION_WORDS[0] <= words <= VISION_WORDS[1]:
        problems.append(f"{rid}: product_vision has {words} words")
    if len(re.findall(r"[.!?](\s|$)", vision)) < 3:
        problems.append(f"{rid}: product_vision has fewer than 3 sentences")
    if not re.search(r"\bfor \w+", vision, re.I):
        problems.append(f"{rid}: product_vision does not say who it is for")
    if "so that" not in vision or not re.search(r"\b(helps|enables|reduce|improve)\b", vision):
        problems.append(f"{rid}: product_vision lacks outcome words")
    for i in ids:
        if not re.search(rf"\b{re.escape(i)}\b", vision):
            problems.append(f"{rid}: product_vision does not mention {i}")
    concept_words = list(dict.fromkeys(content_words(rec["concept"])))
    kept = sum(1 for w in concept_words if w in set(content_words(vision))) / max(1, len(concept_words))
    if kept < 0.6:
        problems.append(f"{rid}: product_vision keeps only {kept:.0%} of the concept's words")
    if rec["existing_vision"]:
        previous = list(dict.fromkeys(content_words(rec["existing_vision"])))[:12]
        kept = len(set(previous) & set(content_words(vision))) / len(previous)
        if kept < 0.5:
            problems.append(f"{rid}: product_vision keeps only {kept:.0%} of the existing vision's words")
    lines = review.split("\n")
    if lines[0] not in ("Verdict: Approved", "Verdict: Changes requested"):
        problems.append(f"{rid}: review does not start with a verdict line")
    bullets = lines[1:]
    if not 2 <= len(bullets) <= 5 or not all(b.startswith("- ") for b in bullets):
        problems.append(f"{rid}: review needs 2-5 bullet lines starting with '- '")
    for b in bullets:
        named = re.findall(r"\b[A-Z]{2,4}-\d{3}\b", b)
        if not named and not re.search(r"\b(must|should|could)\b", b):
            problems.append(f"{rid}: bullet cites no requirement id or priority: {b}")
        for i in named:
            if i not in ids:
                problems.append(f"{rid}: bullet cites unknown id {i}")
    words = len(review.split())
    if not REVIEW_WORDS[0] <= words <= REVIEW_WORDS[1]:
        problems.append(f"{rid}: product_owner_review has {words} words")
    ratio = trigram_distinct_ratio(f"{vision}\n{review}")
    if ratio < 0.9:
        problems.append(f"{rid}: only {ratio:.0%} distinct trigrams across vision and review")


def self_check(data: dict[str, list[dict]]) -> list[str]:
    try:
        import yaml
    except ImportError:  # the check still runs, without the YAML parse
        yaml = None
        print("warning: PyYAML not installed; requirements_yaml is not parse-checked", file=sys.stderr)
    problems: list[str] = []
    seen_ids: dict[str, str] = {}
    seen_concepts: dict[str, str] = {}
    key_order = ["id", "domain", "concept", "requirements_yaml", "existing_vision"]
    for split, n, with_outputs in SPLITS:
        records = data[split]
        if len(records) != n:
            problems.append(f"{split}: {len(records)} records, expected {n}")
        if [r["id"] for r in records] != sorted(r["id"] for r in records):
            problems.append(f"{split}: records are not sorted by id")
        for rec in records:
            rid = rec["id"]
            expected = key_order + (["product_vision", "product_owner_review"] if with_outputs else [])
            if list(rec) != expected:
                problems.append(f"{rid}: keys {list(rec)}")
            if not re.fullmatch(rf"{split}-\d{{4}}", rid):
                problems.append(f"{rid}: bad id")
            if rid in seen_ids:
                problems.append(f"{rid}: duplicate id")
            seen_ids[rid] = split
            if rec["concept"] in seen_concepts:
                problems.append(f"{rid}: concept already used by {seen_concepts[rec['concept']]}")
            seen_concepts[rec["concept"]] = rid
            if not 1 <= len(re.findall(r"[.!?](\s|$)", rec["concept"])) <= 3:
                problems.append(f"{rid}: concept is not 1-3 sentences")
            ev = rec["existing_vision"]
            if ev and not 1 <= len(re.findall(r"[.!?](\s|$)", ev)) <= 3:
                problems.append(f"{rid}: existing_vision is not 1-3 sentences")
            ids = re.findall(r"^  - id: (\S+)$", rec["requirements_yaml"], re.M)
            if yaml is not None:
                try:
                    parsed = yaml.safe_load(rec["requirements_yaml"])
                except yaml.YAMLError as exc:
                    problems.append(f"{rid}: requirements_yaml does not parse: {exc}")
                    continue
                items = parsed.get("requirements") if isinstance(parsed, dict) else None
                if not isinstance(parsed, dict) or list(parsed) != ["requirements"] or not isinstance(items, list):
                    problems.append(f"{rid}: requirements_yaml is not a mapping with a 'requirements' list")
                    continue
                ids = []
                for item in items:
                    ok = (
                        isinstance(item, dict)
                        and list(item) == ["id", "title", "priority", "acceptance_criteria"]
                        and isinstance(item["id"], str)
                        and re.fullmatch(r"[A-Z]{2,4}-\d{3}", item["id"])
                        and isinstance(item["title"], str)
                        and item["priority"] in SEN_PRIORITY
                        and isinstance(item["acceptance_criteria"], list)
                        and 1 <= len(item["acceptance_criteria"]) <= 3
                        and all(isinstance(c, str) and c for c in item["acceptance_criteria"])
                    )
                    if not ok:
                        problems.append(f"{rid}: malformed requirement {item!r}")
                        continue
                    ids.append(item["id"])
                if not 3 <= len(items) <= 7:
                    problems.append(f"{rid}: {len(items)} requirements")
                if len(set(ids)) != len(ids):
                    problems.append(f"{rid}: duplicate requirement ids")
            if with_outputs:
                _check_reference(rec, ids, problems)
    return problems


# ---------------------------------------------------------------------------------------
# Files
# ---------------------------------------------------------------------------------------


def render_files(data: dict[str, list[dict]]) -> dict[str, bytes]:
    files = {}
    for split, _, _ in SPLITS:
        text = "".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in data[split])
        files[f"{split}.jsonl"] = text.encode("utf-8")
    return files


def build() -> dict[str, bytes]:
    data = generate()
    problems = self_check(data)
    if problems:
        for p in problems[:50]:
            print(f"self-check: {p}", file=sys.stderr)
        raise SystemExit(f"self-check failed with {len(problems)} problem(s); nothing written")
    return render_files(data)


def write(files: dict[str, bytes], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        (out / name).write_bytes(content)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    parser.add_argument("--check", action="store_true", help="regenerate into a temporary directory and exit 1 if the files in --out differ")
    args = parser.parse_args(argv)
    files = build()
    if args.check:
        with tempfile.TemporaryDirectory() as tmp:
            write(files, Path(tmp))
            stale = []
            for name in files:
                fresh = (Path(tmp) / name).read_bytes()
                current = args.out / name
                if not current.exists():
                    stale.append(f"{current} is missing")
                elif current.read_bytes() != fresh:
                    stale.append(f"{current} differs from what the generator produces")
        if stale:
            for line in stale:
                print(line, file=sys.stderr)
            print("run: python scripts/make_demo_data.py", file=sys.stderr)
            return 1
        print(f"{args.out}: up to date ({', '.join(files)})")
        return 0
    write(files, args.out)
    newline = b"\n"
    counts = ", ".join(f"{name} {content.count(newline)}" for name, content in files.items())
    print(f"wrote {args.out}: {counts}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
