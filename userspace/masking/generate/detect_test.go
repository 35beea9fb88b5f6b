package generate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fixNow pins the reference date of birth-date and SA ID checks.
func fixNow(t *testing.T) {
	t.Helper()
	prev := now
	now = func() time.Time { return time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC) }
	t.Cleanup(func() { now = prev })
}

// luhnDigit returns the check digit that makes body+digit pass Luhn.
func luhnDigit(body string) string {
	for d := 0; d <= 9; d++ {
		if Luhn(body + strconv.Itoa(d)) {
			return strconv.Itoa(d)
		}
	}
	panic("no Luhn digit")
}

// ibanOf computes the check digits of an IBAN from its country and BBAN.
func ibanOf(country, bban string) string {
	rem := 0
	for _, r := range bban + country + "00" {
		if r >= 'A' {
			rem = (rem*100 + int(r-'A') + 10) % 97
		} else {
			rem = (rem*10 + int(r-'0')) % 97
		}
	}
	return fmt.Sprintf("%s%02d%s", country, 98-rem, bban)
}

func check(t *testing.T, name string, fn func(string) bool, yes, no []string) {
	t.Helper()
	for _, v := range yes {
		if !fn(v) {
			t.Errorf("%s(%q) = false, want true", name, v)
		}
	}
	for _, v := range no {
		if fn(v) {
			t.Errorf("%s(%q) = true, want false", name, v)
		}
	}
}

func TestLuhn(t *testing.T) {
	check(t, "Luhn", Luhn,
		[]string{"79927398713", "4111111111111111", "378282246310005", "0" + "0"},
		[]string{"79927398710", "4111111111111112", "1234567812345678", "", "7", "12a4"})
}

func TestIsCardNumber(t *testing.T) {
	check(t, "IsCardNumber", IsCardNumber,
		[]string{"4111 1111 1111 1111", "4111-1111-1111-1111", "5555555555554444", "378282246310005",
			"6011111111111117", "3530111333300000", "4222222222222", "2223003122003222", "36227206271667"},
		[]string{
			"4111 1111 1111 1112", // bad check digit
			"1234567812345670",    // passes Luhn, no issuer starts with 1
			"5555 5555 5555 444",  // Mastercard with 15 digits
			"411111111111",        // too short
			"4111x1111x1111x1111", "", "4111 1111 1111 1111 1111 1",
		})
}

func TestIsIBAN(t *testing.T) {
	check(t, "IsIBAN", IsIBAN,
		[]string{"GB82 WEST 1234 5698 7654 32", "DE89370400440532013000", "gb82west12345698765432",
			ibanOf("NL", "ABNA0417164300"), ibanOf("FR", "20041010050500013M02606"), ibanOf("ZZ", "1234567890123")},
		[]string{
			"GB82 WEST 1234 5698 7654 33", // mod-97 fails
			"GB82 WEST 1234 5698 7654",    // GB is 22 characters
			"DE89370400440532013001", "1289370400440532013000", "DEXX370400440532013000", "", "DE89",
		})
}

func TestIsSAID(t *testing.T) {
	fixNow(t)
	good := "800101500908"
	good += luhnDigit(good)
	y2k := "050229" // not a leap year in 2005 nor 1905
	badDate := "801301500908"
	badDate += luhnDigit(badDate)
	feb29 := "000229" + "5009" + "08"
	feb29 += luhnDigit(feb29) // 2000 is a leap year
	badCitizen := "800101500938"
	badCitizen += luhnDigit(badCitizen)
	leap := y2k + "500908"
	leap += luhnDigit(leap)
	wrongLuhn := good[:12] + strconv.Itoa((int(good[12]-'0')+1)%10)
	check(t, "IsSAID", IsSAID,
		[]string{good, feb29, "9202204720082"[:12] + luhnDigit("920220472008")},
		[]string{badDate, badCitizen, leap, wrongLuhn, good[:12], good + "1", "", "abcdefghijklm"})
}

func TestIsSSN(t *testing.T) {
	check(t, "IsSSN", IsSSN,
		[]string{"123-45-6789", "536-22-1234", "001-01-0001", "899 99 9999"},
		[]string{"000-12-3456", "666-12-3456", "900-12-3456", "987-65-4321", "123-00-4567", "123-45-0000",
			"078-05-1120", "123456789", "123-45 6789", "12-345-6789"})
	check(t, "isBareSSN", isBareSSN, []string{"123456789"}, []string{"000456789", "666456789", "912345678", "12345678"})
}

func TestPhones(t *testing.T) {
	check(t, "IsE164Phone", IsE164Phone,
		[]string{"+27825550134", "+27 82 555 0134", "+1 (415) 555-2671", "+44 20 7946 0958", "+4915112345678"},
		[]string{"+0825550134", "+123", "27825550134", "+27 82 555 0134 ext", "+1234567890123456"})
	check(t, "IsNationalPhone", IsNationalPhone,
		[]string{"082 555 0134", "(011) 555-0134", "020 7946 0958", "(415) 555-2671", "415-555-2671", "415.555.2671"},
		[]string{"123-45-6789", "2024-01-15", "192.168.10.20", "0825550134", "12 34", "(415) 055-2671", "000 123 4567"})
}

func TestIsEmail(t *testing.T) {
	check(t, "IsEmail", IsEmail,
		[]string{"alice@example.com", "o'brien+tag@mail.example.co.za", "A.B@sub.example.org"},
		[]string{"alice@", "@example.com", "alice example.com", "alice@example", "alice@@example.com",
			"contact alice@example.com today", ".alice@example.com"})
}

func TestIsIPAddress(t *testing.T) {
	check(t, "IsIPAddress", IsIPAddress,
		[]string{"192.168.1.20", "10.0.0.0/8", "2001:db8::1", "::1", "fe80::1:2"},
		[]string{"256.1.1.1", "1.2.3", "192.168.01.1", "fe80::1%eth0", "example.com", "1.2.3.4.5"})
}

func TestIsPassportLike(t *testing.T) {
	check(t, "IsPassportLike", IsPassportLike,
		[]string{"A12345678", "M1234567", "123456789", "AB1234567"},
		[]string{"ORD-1234567", "ABC", "A123", "hello world"})
}

func TestIsStreetAddress(t *testing.T) {
	check(t, "IsStreetAddress", IsStreetAddress,
		[]string{"12 Main Road", "Unit 4, 18 Long Street, Cape Town", "221B Baker St", "1600 Pennsylvania Avenue NW",
			"Hauptstraße 5", "PO Box 1234", "45 Oak Ave.", "7 Jan Smuts Drive, Randburg"},
		[]string{"Main Road", "12 apples", "Called customer about delivery", "2024-01-15", "Road 12 trip"})
}

func TestIsPersonName(t *testing.T) {
	check(t, "IsPersonName", IsPersonName,
		[]string{"Alice", "Thabo Nkosi", "Maria van der Merwe", "Smith, John", "Jean-Luc Picard"},
		[]string{"alice", "Widget Pro 3000", "SKU-123", "Gizmo", "ALICE SMITH 2", ""})
	check(t, "isFullName", isFullName, []string{"Alice Zwane"}, []string{"Alice"})
}

func hexKey(seed string) string {
	s := sha256.Sum256([]byte(seed))
	return hex.EncodeToString(s[:])
}

func TestSecrets(t *testing.T) {
	jwt := "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	check(t, "IsJWT", IsJWT, []string{jwt}, []string{"abc.def.ghi", "eyJub3RhbGciOjF9.eyJzdWIiOiIxIn0.sig", "a.b"})
	check(t, "IsKnownSecret", IsKnownSecret,
		[]string{jwt, "sk_live_" + strings.Repeat("a1B2", 6), "AKIAIOSFODNN7EXAMPLE", "ghp_" + strings.Repeat("x", 36),
			"-----BEGIN RSA PRIVATE KEY-----\nMIIE", "$2b$12$" + strings.Repeat("a", 53), "$argon2id$v=19$m=65536",
			"SCRAM-SHA-256$4096:salt$stored:server"},
		[]string{"sk_live_short", "AKIA123", "hello", "-----BEGIN PUBLIC KEY-----", "$2b$12$short"})
	check(t, "IsHighEntropy", IsHighEntropy,
		[]string{hexKey("a"), hexKey("b")[:40], "q8Zr3LmX0aPw7VtK2bNc9YhJ5sDf", "0x" + hexKey("c")},
		[]string{strings.Repeat("a", 64), "123e4567-e89b-12d3-a456-426614174000", "internationalization_is_long",
			"12345678901234567890123456789012", "getUserAccountBalanceNow", hexKey("d")[:20], "short"})
}

func TestEntropy(t *testing.T) {
	for v, want := range map[string]float64{"": 0, "aaaa": 0, "ab": 1, "abcd": 2, "aabb": 1, "0123456789abcdef": 4} {
		if got := Entropy(v); got != want {
			t.Errorf("Entropy(%q) = %v, want %v", v, got, want)
		}
	}
	if Entropy(hexKey("x")) < 3.5 {
		t.Errorf("a SHA-256 in hex has %.2f bits per character; random hex has nearly 4", Entropy(hexKey("x")))
	}
}

func TestBirthDates(t *testing.T) {
	fixNow(t)
	var births, hires, future []string
	for i := range 50 {
		births = append(births, fmt.Sprintf("%d-%02d-%02d", 1950+i, 1+i%12, 1+i%28))
		hires = append(hires, fmt.Sprintf("%d-%02d-01", 1985+i*4/5, 1+i%12)) // 1985-2024: 60% over 16 years ago
		future = append(future, fmt.Sprintf("%d-01-01", 1990+i))
	}
	if n, col := birthDates(births); n != 50-0 && n < 45 || !col {
		t.Errorf("birth dates 1950-1999: %d plausible, column %v", n, col)
	}
	if _, col := birthDates(hires); col {
		t.Error("hire dates 1985-2024 judged a birth-date column")
	}
	if _, col := birthDates(future); col {
		t.Error("dates from 1990 to beyond today judged a birth-date column")
	}
}

func TestWords(t *testing.T) {
	for in, want := range map[string]string{
		"firstName": "first name", "APIKey": "api key", "address_line1": "address line 1", "EMAIL": "email",
		"card_last4": "card last 4", "ip-addr": "ip addr", "DateOfBirth": "date of birth",
	} {
		if got := strings.Join(Words(in), " "); got != want {
			t.Errorf("Words(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNameSignal(t *testing.T) {
	for name, want := range map[string]string{
		"email": "email strong", "customer_email": "email strong", "email_address": "email strong",
		"emergency_contact_phone": "phone strong", "first_name": "person_name strong", "FirstName": "person_name strong",
		"customer_name": "full_name strong", "name": "full_name weak", "ip_address": "ip strong",
		"card_number": "card strong", "password_hash": "secret strong", "token": "secret weak",
		"date_of_birth": "dob strong", "national_id": "national_id strong", "id_number": "national_id strong",
		"home_address": "address strong", "given_names": "person_name strong", "emails": "email strong",
		"shipping_addresses": "address strong", "salary": "compensation strong", "passport_no": "passport strong",
		// negated or nothing
		"email_verified": "", "card_type": "", "card_last4": "", "card_brand": "", "phone_country_code": "",
		"status": "", "product_name": "", "order_number": "", "notes": "", "billing_address_city": "",
	} {
		sig, ok := nameSignal(name)
		got := ""
		if ok {
			got = string(sig.Kind) + map[bool]string{true: " strong", false: " weak"}[sig.Strong]
		}
		if got != want {
			t.Errorf("nameSignal(%q) = %q, want %q", name, got, want)
		}
	}
}
