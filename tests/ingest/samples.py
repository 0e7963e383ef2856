"""Sample files the tests generate: real exports' column layouts, JSON, e-mail, broken files."""

from __future__ import annotations

import csv
import io
import json
from email.message import EmailMessage

STRIPE_PAYMENTS = [
    "id",
    "Description",
    "Seller Message",
    "Created (UTC)",
    "Amount",
    "Amount Refunded",
    "Currency",
    "Converted Amount",
    "Fee",
    "Status",
    "Customer Email",
]
PAYPAL = [
    "Date",
    "Time",
    "TimeZone",
    "Name",
    "Type",
    "Status",
    "Currency",
    "Gross",
    "Fee",
    "Net",
    "From Email Address",
    "To Email Address",
    "Transaction ID",
]
SHOPIFY = [
    "Name",
    "Email",
    "Financial Status",
    "Paid at",
    "Fulfillment Status",
    "Currency",
    "Subtotal",
    "Total",
    "Lineitem quantity",
    "Lineitem name",
    "Lineitem price",
]
CHASE = ["Details", "Posting Date", "Description", "Amount", "Type", "Balance", "Check or Slip #"]
BANK_OF_AMERICA = ["Date", "Description", "Amount", "Running Bal."]
AMEX = ["Date", "Description", "Card Member", "Account #", "Amount"]
MONZO = [
    "Transaction ID",
    "Date",
    "Time",
    "Type",
    "Name",
    "Emoji",
    "Category",
    "Amount",
    "Currency",
    "Local amount",
]


def table(header: list[str] | None, rows: list[list[str]], delimiter: str = ",") -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    if header is not None:
        writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue().encode()


def stripe_row(index: int) -> list[str]:
    return [
        f"ch_{index:06d}",
        f"Order {index}",
        "Payment complete.",
        f"2024-03-{index % 28 + 1:02d} 10:{index % 60:02d}:00",
        f"{index * 3}.50",
        "0.00",
        "usd",
        f"{index * 3}.50",
        "0.40",
        "Paid",
        f"buyer{index}@example.com",
    ]


def stripe_csv(count: int = 40) -> bytes:
    return table(STRIPE_PAYMENTS, [stripe_row(i) for i in range(count)])


def paypal_csv(count: int = 25) -> bytes:
    rows = [
        [
            f"{i % 12 + 1:02d}/15/2024",
            "09:30:00",
            "PST",
            f"Customer {i}",
            "Express Checkout Payment",
            "Completed",
            "USD",
            f"{i + 10}.00",
            "-0.59",
            f"{i + 9}.41",
            f"c{i}@example.org",
            "shop@example.org",
            f"9XK{i:08d}",
        ]
        for i in range(count)
    ]
    return table(PAYPAL, rows)


def shopify_csv(count: int = 12) -> bytes:
    rows = [
        [
            f"#{1000 + i}",
            f"buyer{i}@example.com",
            "paid",
            "2024-02-01 12:00:00 -0500",
            "fulfilled",
            "USD",
            "20.00",
            "24.99",
            "1",
            f"T-shirt {i}",
            "20.00",
        ]
        for i in range(count)
    ]
    return table(SHOPIFY, rows)


def chase_row(index: int) -> list[str]:
    return [
        "DEBIT",
        f"01/{index % 28 + 1:02d}/2024",
        f"COFFEE SHOP {index}",
        f"-{index}.50",
        "DEBIT_CARD",
        f"{5000 - index}.00",
        "",
    ]


def chase_csv(rows: range | list[int] = range(50)) -> bytes:
    return table(CHASE, [chase_row(i) for i in rows])


def bank_of_america_csv(count: int = 20) -> bytes:
    rows = [
        [f"02/{i % 28 + 1:02d}/2024", f"PAYMENT {i}", f"-{i}.00", f"{900 - i}.00"]
        for i in range(count)
    ]
    return table(BANK_OF_AMERICA, rows)


def amex_csv(count: int = 15) -> bytes:
    rows = [
        [f"03/{i % 28 + 1:02d}/2024", f"MERCHANT {i}", "A SMITH", "-41004", f"{i}.99"]
        for i in range(count)
    ]
    return table(AMEX, rows)


def monzo_csv(count: int = 10) -> bytes:
    rows = [
        [
            f"tx_{i:012d}",
            f"{i % 28 + 1:02d}/04/2024",
            "08:00:00",
            "Card payment",
            f"Cafe {i}",
            "",
            "Eating out",
            f"-{i}.20",
            "GBP",
            f"-{i}.20",
        ]
        for i in range(count)
    ]
    return table(MONZO, rows)


def contacts_csv(count: int = 30, delimiter: str = ",") -> bytes:
    rows = [[f"Person {i}", f"person{i}@example.com", f"+1 555 01{i:02d}"] for i in range(count)]
    return table(["Name", "Email", "Phone"], rows, delimiter)


def typed_csv() -> bytes:
    """One column of each type, and a quoted field that spans two lines."""
    header = ["flag", "count", "ratio", "price", "day", "moment", "mail", "site", "note"]
    rows = [
        [
            "yes" if i % 2 else "no",
            str(i),
            f"{i}.25",
            f"${i},000.00" if i % 2 else f"{i}.00",
            f"2024-05-{i + 1:02d}",
            f"2024-05-{i + 1:02d}T08:30:00Z",
            f"user{i}@example.net",
            f"https://example.net/{i}",
            "line one\nline two" if i == 3 else f"note {i}",
        ]
        for i in range(8)
    ]
    return table(header, rows)


def transactions_json(count: int = 10) -> bytes:
    records = [
        {
            "id": i,
            "date": f"2024-06-{i + 1:02d}",
            "amount": i * 1.5,
            "paid": bool(i % 2),
            "email": f"payer{i}@example.com",
        }
        for i in range(count)
    ]
    return json.dumps({"transactions": records}, indent=2).encode()


def stripe_api_json(count: int = 5) -> bytes:
    charges = [
        {
            "id": f"ch_{i}",
            "object": "charge",
            "amount": 1000 + i,
            "currency": "usd",
            "created": 1700000000 + i,
            "livemode": False,
        }
        for i in range(count)
    ]
    return json.dumps({"object": "list", "data": charges, "has_more": False}).encode()


def settings_json() -> bytes:
    return json.dumps({"theme": "dark", "retries": 3, "endpoints": ["a", "b"]}).encode()


def events_jsonl(count: int = 6) -> bytes:
    lines = [json.dumps({"event": f"e{i}", "at": f"2024-07-0{i + 1}"}) for i in range(count)]
    return ("\n".join(lines) + "\n").encode()


def invoice_email(attachment: bool = True) -> bytes:
    message = EmailMessage()
    message["From"] = "Billing <billing@vendor.example>"
    message["To"] = "Alice <alice@example.com>, bob@example.com"
    message["Cc"] = "accounts@example.com"
    message["Subject"] = "Invoice 2024-117 for March"
    message["Date"] = "Tue, 02 Apr 2024 10:15:00 +0000"
    message["Message-ID"] = "<inv-117@vendor.example>"
    message.set_content(
        "Hello Alice,\n\nYour invoice for $1,249.00 is due on 2024-04-30.\n"
        "Pay at https://vendor.example/pay/117 or write to billing@vendor.example.\n"
    )
    if attachment:
        message.add_attachment(
            b"%PDF-1.4 fake", maintype="application", subtype="pdf", filename="invoice-117.pdf"
        )
    return bytes(message)


def plain_email() -> bytes:
    message = EmailMessage()
    message["From"] = "carol@example.com"
    message["To"] = "dave@example.com"
    message["Subject"] = "Lunch?"
    message.set_content("Are you free on Friday?\n")
    return bytes(message)


# --- broken files -----------------------------------------------------------------------------

LATIN1_CSV = "Name,City\nJosé,Málaga\n".encode("latin-1")
RAGGED_CSV = b"Date,Description,Amount\n2024-01-01,Coffee,-4.50\n2024-01-02,Tea\n"
INVALID_JSON = b'{"name": "x",\n "items": [1, 2,, 3]}\n'
EMPTY = b""
BLANK = b"   \n\n \t\n"
NOT_AN_EMAIL = b"just some words\nwithout any headers\n"
