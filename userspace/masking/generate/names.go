package generate

import (
	"strings"
	"unicode"
)

// nameRule is one entry of the dictionary of column names: words that, in
// this order and next to each other among a column name's words, say the
// column holds data of a kind. A strong rule is enough on its own; a weak
// one needs the values to agree.
type nameRule struct {
	words  []string
	kind   Kind
	strong bool
}

// NameSignal is what a column's name says.
type NameSignal struct {
	Kind   Kind
	Strong bool
	// Words are the dictionary words that matched (never a value).
	Words string
}

func rules(kind Kind, strong bool, entries ...string) []nameRule {
	out := make([]nameRule, len(entries))
	for i, e := range entries {
		out[i] = nameRule{words: strings.Fields(e), kind: kind, strong: strong}
	}
	return out
}

// nameRules is the dictionary. A column's words are its name split at
// underscores, digits and camelCase; the longest matching rule wins.
var nameRules = concat(
	rules(KindEmail, true, "email", "e mail", "emailaddress", "email address", "mail address", "emailaddr"),
	rules(KindEmail, false, "mail"),
	rules(KindPhone, true, "phone", "phone number", "phonenumber", "telephone", "mobile", "mobile number",
		"cellphone", "cell phone", "cell", "msisdn", "tel", "fax", "phone no", "contact number", "whatsapp"),
	rules(KindSSN, true, "ssn", "social security", "social security number", "socialsecurity"),
	rules(KindPassport, true, "passport", "passport number", "passport no", "passportnumber", "passport num",
		"travel document"),
	rules(KindNationalID, true, "national id", "nationalid", "national identity", "national number", "nin",
		"national insurance", "id number", "idnumber", "id no", "identity number", "tax id", "taxid",
		"tax number", "tin", "sa id", "said number", "identification number", "personnummer", "nric",
		"aadhaar", "cpf", "curp", "dni", "nif", "nie"),
	rules(KindNationalID, false, "sin", "identity", "identification", "document number"),
	rules(KindIBAN, true, "iban"),
	rules(KindCard, true, "card number", "cardnumber", "card no", "card num", "credit card", "creditcard",
		"cc number", "ccnumber", "cc num", "pan", "debit card", "primary account number"),
	rules(KindCard, false, "card", "cc"),
	rules(KindSecret, true, "cvv", "cvc", "cvv2", "card security code"),
	rules(KindBankAccount, true, "bank account", "bank account number", "bankaccount", "routing number",
		"sort code", "bsb", "swift account", "account iban"),
	rules(KindBankAccount, false, "account number", "account no", "acct number", "acct no", "accountnumber"),
	rules(KindDOB, true, "dob", "date of birth", "dateofbirth", "birth date", "birthdate", "birthday",
		"birth", "born", "born on", "birth dt"),
	rules(KindAddress, true, "address", "street", "street address", "streetaddress", "address line",
		"addressline", "home address", "postal address", "billing address", "shipping address",
		"mailing address", "residential address", "physical address"),
	rules(KindAddress, false, "addr", "line", "postcode", "postal code", "zip", "zipcode", "zip code"),
	rules(KindName, true, "first name", "firstname", "fname", "given name", "givenname", "forename",
		"last name", "lastname", "lname", "surname", "family name", "familyname", "middle name",
		"middlename", "maiden name", "nickname"),
	rules(KindFullName, true, "full name", "fullname", "customer name", "contact name", "employee name",
		"holder name", "cardholder name", "card holder", "cardholder", "account holder", "patient name",
		"person name", "legal name", "recipient name", "sender name", "beneficiary name",
		"beneficiary", "display name", "member name", "student name", "guardian name", "spouse name",
		"next of kin", "emergency contact"),
	rules(KindFullName, false, "name", "contact", "owner name", "user name"),
	rules(KindSecret, true, "password", "passwd", "pwd", "pass phrase", "passphrase", "password hash",
		"secret", "client secret", "api key", "apikey", "api token", "access token", "accesstoken",
		"refresh token", "auth token", "authtoken", "bearer token", "session token", "session key",
		"private key", "privatekey", "secret key", "access key", "signing key", "encryption key",
		"otp", "totp", "mfa secret", "recovery code", "reset token", "security answer", "pin"),
	rules(KindSecret, false, "token", "key", "hash", "salt", "credential", "credentials", "signature"),
	rules(KindIP, true, "ip", "ip address", "ipaddress", "ipaddr", "ip addr", "ipv4", "ipv6",
		"remote addr", "client addr", "remote ip", "client ip", "inet"),
	rules(KindCompensation, true, "salary", "wage", "wages", "income", "compensation", "payroll",
		"annual salary", "gross pay", "net pay"),
)

func concat(parts ...[]nameRule) []nameRule {
	var out []nameRule
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// negations are words that make a column about the data rather than the
// data itself (email_verified, card_type, phone_country_code), unless the
// matched rule contains them.
var negations = set("type", "kind", "status", "count", "verified", "verification", "enabled", "flag",
	"format", "template", "preference", "preferences", "consent", "optin", "optout", "domain",
	"provider", "length", "policy", "strength", "expires", "expiry", "expiration", "attempts",
	"mask", "masked", "country", "prefix", "required", "valid", "bounced", "version", "algorithm",
	"algo", "uuid", "fk", "size", "hint")

// kindNegations are words that negate one kind only (card_last_four,
// card_brand: PCI DSS lets the last four digits and the brand be shown).
var kindNegations = map[Kind]map[string]bool{
	KindCard:   set("last", "four", "brand", "network", "issuer", "bin", "holder", "expiry", "exp", "month", "year"),
	KindSecret: set("public", "pub", "rotated", "hint", "question"),
	KindName:   set("product", "company", "file", "table", "host", "domain", "server", "app", "service"),
	KindFullName: set("product", "company", "business", "file", "table", "column", "host", "server", "app",
		"service", "brand", "item", "category", "group", "team", "role", "department", "dept", "city",
		"country", "region", "state", "street", "plan", "tier", "event", "campaign", "project", "org",
		"organisation", "organization", "bank", "merchant", "vendor", "supplier", "store", "shop",
		"branch", "site", "device", "model", "display", "tag", "label", "job", "task", "queue",
		"channel", "schema", "index", "field", "key", "sku", "course", "school", "venue"),
	KindAddress: set("email", "mail", "ip", "mac", "wallet", "web", "url", "host", "server", "remote",
		"client", "memory", "contract", "bitcoin", "eth", "city", "town", "state", "province", "region",
		"items", "item", "manager"),
	KindDOB: set("place", "country", "city", "certificate", "weight"),
	KindIP:  set("range", "allow", "allowed", "allowlist", "whitelist", "deny", "blocklist", "subnet", "mask"),
}

// personQualifiers make a "name" weak rule strong: customer name, patient
// name, contact name are people; "name" alone may be a product.
var personQualifiers = set("customer", "client", "contact", "employee", "patient", "person", "member",
	"holder", "cardholder", "recipient", "sender", "beneficiary", "guardian", "spouse", "parent",
	"child", "student", "applicant", "candidate", "passenger", "driver", "tenant", "owner", "signatory")

func set(words ...string) map[string]bool {
	m := make(map[string]bool, len(words))
	for _, w := range words {
		m[w] = true
	}
	return m
}

// Words splits a column name into lower-case words: at non-letters and
// non-digits, between letters and digits, and at camelCase humps.
func Words(name string) []string {
	var words []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			words = append(words, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	rs := []rune(name)
	for i, r := range rs {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			continue
		case len(cur) > 0:
			prev := cur[len(cur)-1]
			if unicode.IsDigit(r) != unicode.IsDigit(prev) {
				flush()
			} else if unicode.IsUpper(r) && unicode.IsLower(prev) {
				flush()
			} else if unicode.IsUpper(r) && unicode.IsUpper(prev) && i+1 < len(rs) && unicode.IsLower(rs[i+1]) {
				flush() // "APIKey": API, Key
			}
		}
		cur = append(cur, r)
	}
	flush()
	return words
}

// nameSignal returns what a column's name says, or ok false. A rule
// matches when its words appear in the name's words in order and next to
// each other; the one ending nearest the end of the name wins (the last
// words say what a column is: emergency_contact_phone is a phone), then
// the longest, then the first listed. A negation word outside the match
// cancels it.
func nameSignal(column string) (NameSignal, bool) {
	words := Words(column)
	if len(words) == 0 {
		return NameSignal{}, false
	}
	best, bestAt := -1, -1
	for i, r := range nameRules {
		at := indexWords(words, r.words)
		if at < 0 {
			continue
		}
		end, bestEnd := at+len(r.words), bestAt+len(nameRules[max(best, 0)].words)
		if best < 0 || end > bestEnd || end == bestEnd && len(r.words) > len(nameRules[best].words) {
			best, bestAt = i, at
		}
	}
	if best < 0 {
		return NameSignal{}, false
	}
	r := nameRules[best]
	for j, w := range words {
		if j >= bestAt && j < bestAt+len(r.words) {
			continue
		}
		if negations[w] || kindNegations[r.kind][w] {
			return NameSignal{}, false
		}
	}
	sig := NameSignal{Kind: r.kind, Strong: r.strong, Words: strings.Join(r.words, " ")}
	if r.kind == KindFullName && !r.strong && len(r.words) == 1 && r.words[0] == "name" {
		for j := range bestAt {
			if personQualifiers[words[j]] {
				sig.Strong, sig.Words = true, words[j]+" name"
			}
		}
	}
	return sig, true
}

// indexWords returns where sub last appears in words, or -1; a word of
// words matches a word of sub or its plural (given_names, emails,
// addresses).
func indexWords(words, sub []string) int {
	for i := len(words) - len(sub); i >= 0; i-- {
		ok := true
		for j := range sub {
			if w := words[i+j]; w != sub[j] && w != sub[j]+"s" && w != sub[j]+"es" {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	return -1
}
