"""What each mail address has said about mail, in the PostgreSQL store (AddressStore): the
mail_addresses table, keyed by the casefolded address."""

from __future__ import annotations

from collections.abc import Callable

from comments_service.models import MailAddress
from comments_service.store.postgres.connections import Connections
from comments_service.store.postgres.rows import record_of, update_keyed


class PostgresAddresses:
    """The mail_addresses table of one database."""

    def __init__(self, connections: Connections) -> None:
        self._connections = connections

    def get_mail_address(self, address: str) -> MailAddress | None:
        wanted = address.casefold()
        with self._connections.transaction() as cursor:
            row = cursor.execute("SELECT record FROM mail_addresses WHERE address = %s",
                                 (wanted,)).fetchone()
        return None if row is None else record_of(MailAddress, row[0], f"address {wanted}")

    def all_mail_addresses(self) -> list[MailAddress]:
        with self._connections.transaction() as cursor:
            rows = cursor.execute("SELECT address, record FROM mail_addresses"
                                  " ORDER BY address").fetchall()
        return [record_of(MailAddress, record, f"address {address}") for address, record in rows]

    def update_mail_address(
        self, address: str, change: Callable[[MailAddress], MailAddress]
    ) -> MailAddress:
        wanted = address.casefold()
        return update_keyed(self._connections.transaction, "mail_addresses", "address", wanted,
                            MailAddress, change, MailAddress(wanted))
