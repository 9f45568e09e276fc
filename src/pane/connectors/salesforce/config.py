"""What a Salesforce link is configured with, and the credentials it signs in with."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from joserfc.errors import JoseError
from joserfc.jwk import RSAKey
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    RootModel,
    SecretStr,
    StringConstraints,
    field_validator,
    model_validator,
)

# An object or field API name (``Lead``, ``Deal_Registration__c``, ``ns__Field__c``). Only these
# names are ever written into SOQL, so nothing a user configures can change a query's shape.
ApiName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}$")]
# A field of the object itself or of a parent (``Product2.Partner_Cost__c``).
FieldPath = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,79}(\.[A-Za-z][A-Za-z0-9_]{0,79})*$")
]
RecordId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9]{15}([A-Za-z0-9]{3})?$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]


class DealFields(BaseModel):
    """Which field of the deal registration object holds each part of a deal (``None``: the
    object has no such field, and that part is neither read nor sent)."""

    model_config = ConfigDict(extra="forbid")

    customer: ApiName = "End_Customer__c"
    customer_domain: ApiName | None = "End_Customer_Website__c"
    customer_country: ApiName | None = "End_Customer_Country__c"
    contact_name: ApiName | None = "Contact_Name__c"
    contact_email: ApiName | None = "Contact_Email__c"
    contact_phone: ApiName | None = "Contact_Phone__c"
    description: ApiName | None = "Description__c"
    products: ApiName | None = Field(
        default="Products__c",
        description="A long text field; each product is written on a line of its own.",
    )
    amount: ApiName | None = "Amount__c"
    close_on: ApiName | None = "Expected_Close_Date__c"
    status: ApiName | None = Field(default="Status__c", description="Read only: the vendor's.")


class SalesforceConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    instance_url: HttpUrl = Field(
        description="The org's My Domain URL, like https://acme.my.salesforce.com."
    )
    api_version: Annotated[str, StringConstraints(pattern=r"^v\d{2,3}\.0$")] = "v60.0"
    jwt_audience: Literal["https://login.salesforce.com", "https://test.salesforce.com"] = Field(
        default="https://login.salesforce.com",
        description="The JWT bearer grant's audience: test.salesforce.com for a sandbox.",
    )
    deal_object: ApiName = Field(
        default="Deal_Registration__c",
        description="The API name of the object the vendor takes deal registrations in.",
    )
    deal_fields: DealFields = Field(default_factory=DealFields)
    pricebook_id: RecordId | None = Field(
        default=None, description="The Pricebook2 to read (empty: the standard price book)."
    )
    currency: Currency = Field(
        default="USD", description="The org's currency: every amount is in it."
    )
    multi_currency: bool = Field(
        default=False,
        description="The org has multi-currency on: each record's CurrencyIsoCode is read "
        "(and set on deals) instead of the one currency above.",
    )
    partner_cost_field: FieldPath | None = Field(
        default=None,
        description="The PricebookEntry field holding the partner's cost, like "
        "Partner_Price__c or Product2.Partner_Cost__c.",
    )
    partner_discount_percent: Annotated[Decimal, Field(ge=0, le=100)] | None = Field(
        default=None,
        description="Or: the partner buys at the list price less this many percent.",
    )

    @field_validator("instance_url")
    @classmethod
    def _my_domain(cls, url: HttpUrl) -> HttpUrl:
        if url.scheme != "https":
            raise ValueError("Salesforce is reached over https only")
        if url.path not in (None, "", "/") or url.query or url.fragment:
            raise ValueError("give the org's address only, like https://acme.my.salesforce.com")
        return url

    @model_validator(mode="after")
    def _one_partner_cost(self) -> SalesforceConfig:
        if self.partner_cost_field and self.partner_discount_percent is not None:
            raise ValueError("set partner_cost_field or partner_discount_percent, not both")
        return self

    @property
    def base_url(self) -> str:
        """The org's address without a trailing slash."""
        return str(self.instance_url).rstrip("/")

    @property
    def data_url(self) -> str:
        return f"{self.base_url}/services/data/{self.api_version}"


Secret = Annotated[SecretStr, StringConstraints(min_length=1)]
NonEmpty = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class ClientCredentialsGrant(BaseModel):
    """The OAuth 2.0 client credentials flow of a connected app (its run-as user reads)."""

    model_config = ConfigDict(extra="forbid")

    grant: Literal["client_credentials"]
    client_id: NonEmpty
    client_secret: Secret


class JwtBearerGrant(BaseModel):
    """The OAuth 2.0 JWT bearer flow: the connected app's consumer key, the user pane acts as,
    and the private key whose certificate is uploaded to the connected app."""

    model_config = ConfigDict(extra="forbid")

    grant: Literal["jwt_bearer"]
    client_id: NonEmpty = Field(description="The connected app's consumer key.")
    username: NonEmpty
    private_key: Secret = Field(description="The RSA private key, PEM encoded.")

    @field_validator("private_key")
    @classmethod
    def _rsa_private_key(cls, value: SecretStr) -> SecretStr:
        try:
            key = RSAKey.import_key(value.get_secret_value())
        except (JoseError, ValueError, TypeError) as exc:
            raise ValueError("not an RSA private key in PEM form") from exc
        if not key.is_private:
            raise ValueError("this is a public key; the private key is needed to sign")
        return value


SalesforceGrant = Annotated[ClientCredentialsGrant | JwtBearerGrant, Field(discriminator="grant")]


class SalesforceCredentials(RootModel[SalesforceGrant]):
    """``{"grant": "client_credentials", ...}`` or ``{"grant": "jwt_bearer", ...}``."""
