package generate

import "github.com/pgproxy/pgproxy/userspace/masking"

// Kind is a kind of sensitive data.
type Kind string

// The kinds the generator recognises.
const (
	KindEmail        Kind = "email"
	KindPhone        Kind = "phone"
	KindCard         Kind = "card"
	KindIBAN         Kind = "iban"
	KindSAID         Kind = "sa_id"
	KindSSN          Kind = "ssn"
	KindPassport     Kind = "passport"
	KindNationalID   Kind = "national_id"
	KindIP           Kind = "ip"
	KindDOB          Kind = "dob"
	KindAddress      Kind = "address"
	KindName         Kind = "person_name"
	KindFullName     Kind = "full_name"
	KindSecret       Kind = "secret"
	KindBankAccount  Kind = "bank_account"
	KindCompensation Kind = "compensation"
)

// kindOrder is the priority of kinds when values match several equally
// well: the more specific validators first.
var kindOrder = []Kind{
	KindSAID, KindCard, KindIBAN, KindSSN, KindSecret, KindEmail, KindIP,
	KindPhone, KindDOB, KindAddress, KindFullName, KindName, KindPassport,
	KindNationalID, KindBankAccount, KindCompensation,
}

var kindText = map[Kind]string{
	KindEmail:        "email address",
	KindPhone:        "phone number",
	KindCard:         "payment card number",
	KindIBAN:         "IBAN",
	KindSAID:         "South African ID number",
	KindSSN:          "US social security number",
	KindPassport:     "passport number",
	KindNationalID:   "national identity number",
	KindIP:           "IP address",
	KindDOB:          "date of birth",
	KindAddress:      "street address",
	KindName:         "person's name",
	KindFullName:     "person's full name",
	KindSecret:       "secret or credential",
	KindBankAccount:  "bank account number",
	KindCompensation: "salary or income",
}

// Describe is the kind in words.
func (k Kind) Describe() string {
	if s, ok := kindText[k]; ok {
		return s
	}
	return string(k)
}

// related reports whether a column name that says a and values that show b
// agree (a national identity column holding SA ID or SSN values, a full
// name column holding names).
func related(a, b Kind) bool {
	if a == b {
		return true
	}
	family := func(k Kind) Kind {
		switch k {
		case KindSAID, KindSSN, KindPassport, KindNationalID:
			return KindNationalID
		case KindName, KindFullName:
			return KindName
		case KindIBAN, KindBankAccount:
			return KindBankAccount
		}
		return k
	}
	return family(a) == family(b)
}

// typeClass is what the generator needs to know of a column's type.
type typeClass int

const (
	classOther   typeClass = iota
	classText              // string category (text, varchar, char, citext, domains over them)
	classNumeric           // integers, numeric, floats
	classDate              // date, timestamp, timestamptz
	classNet               // inet, cidr
	classBytes             // bytea
)

// classify returns the class of a type from its category and base name.
func classOf(category, typname string) typeClass {
	switch {
	case category == "S":
		return classText
	case category == "N" && typname != "oid" && typname != "regclass" && typname != "regtype" && typname != "regproc":
		return classNumeric
	case typname == "date" || typname == "timestamp" || typname == "timestamptz":
		return classDate
	case category == "I":
		return classNet
	case typname == "bytea":
		return classBytes
	}
	return classOther
}

// fits reports whether a column of class c can hold data of kind k (an
// email_verified boolean cannot hold an email address).
func fits(k Kind, c typeClass) bool {
	switch k {
	case KindEmail, KindName, KindFullName, KindAddress, KindPassport:
		return c == classText
	case KindPhone, KindCard, KindSSN, KindSAID, KindNationalID, KindBankAccount:
		return c == classText || c == classNumeric
	case KindIBAN:
		return c == classText
	case KindSecret:
		return c == classText || c == classBytes
	case KindIP:
		return c == classText || c == classNet
	case KindDOB:
		return c == classText || c == classDate
	case KindCompensation:
		return c == classNumeric || c == classText
	}
	return false
}

// maskFor chooses the mask of a sensitive column: the masking package's
// checkType lets only full and null produce a type that is not text, so
// such columns get null (what full gives them too, said plainly).
func maskFor(k Kind, c typeClass, hmac bool) (masking.MaskType, int) {
	if c != classText {
		return masking.Null, 0
	}
	switch k {
	case KindEmail:
		return masking.Email, 0
	case KindName:
		return masking.Partial, 1
	case KindFullName:
		return masking.Partial, 2
	case KindCard, KindIBAN, KindSAID, KindSSN, KindPassport, KindNationalID, KindPhone, KindIP, KindBankAccount:
		// Keyed: joins and counts on the column still work, and a
		// dictionary of every possible number cannot reverse it. An unkeyed
		// hash of so small a space could be, so without a key: full.
		if hmac {
			return masking.HMAC, 0
		}
		return masking.Full, 0
	}
	return masking.Full, 0
}
