package generate

import (
	"encoding/base64"
	"encoding/json"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// detector recognises one shape of sensitive value. Its evidence name is
// written in the generated file's comments; values never are.
type detector struct {
	name string
	kind Kind
	// weak detectors (bare digit runs that could be any number, generic
	// identifier shapes, high entropy) count only when the column's name
	// says the same kind.
	weak  bool
	match func(v string) bool
}

// detectors are tried on every sampled value.
var detectors = []detector{
	{name: "email", kind: KindEmail, match: IsEmail},
	{name: "phone-e164", kind: KindPhone, match: IsE164Phone},
	{name: "phone-national", kind: KindPhone, match: IsNationalPhone},
	{name: "phone-digits", kind: KindPhone, weak: true, match: isBarePhone},
	{name: "card-luhn", kind: KindCard, match: IsCardNumber},
	{name: "iban-mod97", kind: KindIBAN, match: IsIBAN},
	{name: "sa-id", kind: KindSAID, match: IsSAID},
	{name: "ssn", kind: KindSSN, match: IsSSN},
	{name: "ssn-digits", kind: KindSSN, weak: true, match: isBareSSN},
	{name: "passport-like", kind: KindPassport, weak: true, match: IsPassportLike},
	{name: "ip-address", kind: KindIP, match: IsIPAddress},
	{name: "street-address", kind: KindAddress, match: IsStreetAddress},
	{name: "person-name", kind: KindName, match: IsPersonName},
	{name: "full-name", kind: KindFullName, match: isFullName},
	{name: "secret-format", kind: KindSecret, match: IsKnownSecret},
	{name: "high-entropy", kind: KindSecret, weak: true, match: IsHighEntropy},
	{name: "digits", kind: KindBankAccount, weak: true, match: isAccountDigits},
	{name: "digits", kind: KindNationalID, weak: true, match: isIDDigits},
	{name: "amount", kind: KindCompensation, weak: true, match: isAmount},
}

var emailRE = regexp.MustCompile(`^[A-Za-z0-9!#$%&'*+/=?^_{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_{|}~-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}$`)

// IsEmail reports whether v is an email address (dot-atom local part,
// a domain with a top-level label of letters).
func IsEmail(v string) bool {
	return len(v) <= 254 && emailRE.MatchString(v)
}

// digitsOf returns the digits of v when v has only digits and the given
// separators, else "".
func digitsOf(v, seps string) string {
	var b strings.Builder
	for _, r := range v {
		switch {
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		case strings.ContainsRune(seps, r):
		default:
			return ""
		}
	}
	return b.String()
}

// IsE164Phone reports whether v is an international number: +, a country
// code that does not start with 0, 8 to 15 digits in all, with optional
// spaces, dashes, dots or parentheses between groups.
func IsE164Phone(v string) bool {
	if !strings.HasPrefix(v, "+") {
		return false
	}
	d := digitsOf(v[1:], " -.()")
	return len(d) >= 8 && len(d) <= 15 && d[0] != '0'
}

var (
	groupsRE = regexp.MustCompile(`^\(?\d{2,5}\)?(?:[ .-]\d{2,5}){1,3}$`)
	nanpRE   = regexp.MustCompile(`^(?:1[ .-]?)?(?:\(\d{3}\) ?|\d{3}[ .-])\d{3}[ .-]\d{4}$`)
	ssnRE    = regexp.MustCompile(`^(\d{3})([- ])(\d{2})([- ])(\d{4})$`)
	dateRE   = regexp.MustCompile(`^\d{4}[-./]\d{1,2}[-./]\d{1,2}|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$`)
)

// IsNationalPhone reports whether v is a number written the way a country
// writes its own: a trunk 0 then groups (082 555 0134, 020 7946 0958,
// (011) 555-0134), or the North American 3-3-4 ((555) 201-0134). Dates,
// IP addresses and SSNs are not phones.
func IsNationalPhone(v string) bool {
	if dateRE.MatchString(v) || ssnRE.MatchString(v) || IsIPAddress(v) {
		return false
	}
	d := digitsOf(v, " -.()")
	if len(d) < 9 || len(d) > 12 {
		return false
	}
	if nanpRE.MatchString(v) && d[len(d)-10] >= '2' && d[len(d)-7] >= '2' {
		return true
	}
	return d[0] == '0' && d[1] != '0' && groupsRE.MatchString(v)
}

// isBarePhone: 10 or 11 digits with a trunk 0 (0825550134), or digits
// stored as a number with a country code (27825550134).
func isBarePhone(v string) bool {
	d := digitsOf(v, "")
	if d == "" {
		return false
	}
	switch {
	case (len(d) == 10 || len(d) == 11) && d[0] == '0' && d[1] != '0':
		return true
	case len(d) >= 10 && len(d) <= 13 && d[0] != '0':
		return true
	}
	return false
}

// Luhn reports whether a string of digits passes the Luhn check.
func Luhn(digits string) bool {
	if len(digits) < 2 {
		return false
	}
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		c := digits[i]
		if c < '0' || c > '9' {
			return false
		}
		n := int(c - '0')
		if double {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return sum%10 == 0
}

// IsCardNumber reports whether v is a payment card number: 13 to 19
// digits (spaces or dashes allowed), an issuer prefix whose length fits
// (Visa, Mastercard, American Express, Discover, JCB, Diners, UnionPay),
// and a valid Luhn check digit.
func IsCardNumber(v string) bool {
	d := digitsOf(v, " -")
	n := len(d)
	if n < 13 || n > 19 || !Luhn(d) {
		return false
	}
	p2, _ := strconv.Atoi(d[:2])
	p3, _ := strconv.Atoi(d[:3])
	p4, _ := strconv.Atoi(d[:4])
	switch {
	case d[0] == '4':
		return n == 13 || n == 16 || n == 19
	case p2 >= 51 && p2 <= 55, p4 >= 2221 && p4 <= 2720:
		return n == 16
	case p2 == 34 || p2 == 37:
		return n == 15
	case p4 == 6011 || p2 == 65 || p3 >= 644 && p3 <= 649:
		return n >= 16
	case p4 >= 3528 && p4 <= 3589:
		return n >= 16
	case p2 == 36 || p2 == 38 || p3 >= 300 && p3 <= 305:
		return n >= 14
	case p2 == 62:
		return n >= 16
	}
	return false
}

// ibanLengths are the IBAN lengths of the registry's countries (others
// may have 15 to 34 characters).
var ibanLengths = map[string]int{
	"AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22, "BR": 29,
	"CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24,
	"FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HR": 21,
	"HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
	"LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27,
	"MT": 31, "MU": 30, "NL": 18, "NO": 15, "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24,
	"RS": 22, "SA": 24, "SC": 31, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TL": 23, "TN": 24, "TR": 26,
	"UA": 29, "VA": 22, "VG": 24, "XK": 20,
}

// IsIBAN reports whether v is an IBAN: country letters, two check digits,
// the country's length (spaces allowed between groups of four), and the
// ISO 7064 mod-97 check equal to 1.
func IsIBAN(v string) bool {
	s := strings.ToUpper(strings.ReplaceAll(v, " ", ""))
	if len(s) < 15 || len(s) > 34 {
		return false
	}
	for i, r := range s {
		switch {
		case i < 2 && (r < 'A' || r > 'Z'):
			return false
		case i >= 2 && i < 4 && (r < '0' || r > '9'):
			return false
		case (r < '0' || r > '9') && (r < 'A' || r > 'Z'):
			return false
		}
	}
	if n, ok := ibanLengths[s[:2]]; ok && n != len(s) {
		return false
	}
	rearranged := s[4:] + s[:4]
	rem := 0
	for _, r := range rearranged {
		if r >= 'A' {
			n := int(r-'A') + 10
			rem = (rem*100 + n) % 97
		} else {
			rem = (rem*10 + int(r-'0')) % 97
		}
	}
	return rem == 1
}

// now is the reference date of birth-date checks (tests fix it).
var now = time.Now

// validDate reports whether y-m-d is a real calendar date.
func validDate(y, m, d int) bool {
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	return m >= 1 && m <= 12 && t.Year() == y && int(t.Month()) == m && t.Day() == d
}

// IsSAID reports whether v is a South African ID number: 13 digits,
// YYMMDD a real date of birth in the past (19YY or 20YY), SSSS the
// sequence (gender), C the citizenship (0 citizen, 1 permanent resident,
// 2 refugee), A any digit, Z the Luhn check digit.
func IsSAID(v string) bool {
	d := digitsOf(v, " ")
	if len(d) != 13 || len(strings.TrimSpace(v)) > 15 {
		return false
	}
	yy, _ := strconv.Atoi(d[0:2])
	mm, _ := strconv.Atoi(d[2:4])
	dd, _ := strconv.Atoi(d[4:6])
	today := now()
	ok := false
	for _, century := range []int{1900, 2000} {
		y := century + yy
		if validDate(y, mm, dd) && !time.Date(y, time.Month(mm), dd, 0, 0, 0, 0, time.UTC).After(today) {
			ok = true
		}
	}
	if !ok || d[10] > '2' {
		return false
	}
	return Luhn(d)
}

// ssnValid applies the Social Security Administration's rules: area not
// 000, 666 or 900-999; group not 00; serial not 0000.
func ssnValid(area, group, serial string) bool {
	a, _ := strconv.Atoi(area)
	return a != 0 && a != 666 && a < 900 && group != "00" && serial != "0000" &&
		area+group+serial != "078051120" // the Woolworth wallet number
}

// IsSSN reports whether v is a US social security number written
// AAA-GG-SSSS (or with spaces) that follows the area, group and serial
// rules.
func IsSSN(v string) bool {
	m := ssnRE.FindStringSubmatch(v)
	return m != nil && m[2] == m[4] && ssnValid(m[1], m[3], m[5])
}

func isBareSSN(v string) bool {
	return len(v) == 9 && digitsOf(v, "") == v && ssnValid(v[:3], v[3:5], v[5:])
}

var passportRE = regexp.MustCompile(`^(?:[A-Z]{1,2}[0-9]{6,9}|[0-9]{9}|[A-Z][0-9]{2}[A-Z0-9][0-9]{5})$`)

// IsPassportLike reports whether v has a passport number's shape (one or
// two letters and 6 to 9 digits, or 9 digits). The shape is shared by
// many codes, so it counts only in a column named for passports.
func IsPassportLike(v string) bool {
	return passportRE.MatchString(strings.TrimSpace(v))
}

// isIDDigits: 6 to 20 digits, the shape of many national numbers.
func isIDDigits(v string) bool {
	d := digitsOf(v, " -")
	return len(d) >= 6 && len(d) <= 20
}

// isAccountDigits: 6 to 20 digits, the shape of a bank account number.
func isAccountDigits(v string) bool { return isIDDigits(v) }

// isAmount: a number.
func isAmount(v string) bool {
	_, err := strconv.ParseFloat(strings.ReplaceAll(v, ",", ""), 64)
	return err == nil
}

// IsIPAddress reports whether v is an IPv4 or IPv6 address, or one with a
// prefix length as inet shows it (10.1.2.3/24). Version strings with
// fewer than four parts are not addresses.
func IsIPAddress(v string) bool {
	if strings.Contains(v, "/") {
		p, err := netip.ParsePrefix(v)
		return err == nil && p.Addr().Zone() == ""
	}
	a, err := netip.ParseAddr(v)
	return err == nil && a.Zone() == ""
}

var (
	streetRE = regexp.MustCompile(`(?i)^(?:(?:unit|apt|apartment|suite|flat|ste)\.? ?#?\d+[a-z]?,? +)?\d{1,6}[a-z]?(?:[-/]\d{1,5})?,? +(?:[\p{L}.'-]+ +){1,5}(?:street|st|road|rd|avenue|ave|av|lane|ln|drive|dr|boulevard|blvd|way|court|ct|place|pl|crescent|cres|terrace|tce|close|highway|hwy|parkway|pkwy|square|sq|circle|cir|trail|trl|row|walk|rise|grove|hill|mews|gardens|park|loop|alley|plaza)\.?(?:[ ,].*)?$`)
	euroRE   = regexp.MustCompile(`(?i)^[\p{L}.' -]*(?:strasse|straße|str\.|weg|gasse|platz|allee|laan|straat|gracht|vej|gatan|gata|rue|calle|via|avenida|rua)\b[\p{L} .'-]*,? +\d{1,5}[a-z]?\b|^(?:rue|calle|via|avenida|rua|boulevard|avenue) +`)
	poBoxRE  = regexp.MustCompile(`(?i)^(?:p\.? ?o\.? ?box|post office box|private bag) +\d+`)
)

// IsStreetAddress reports whether v is a street address: a house number
// then words ending in a street type (12 Main Road, Unit 4, 18 Long St),
// the European order (Hauptstraße 5, Rue de Rivoli 10), or a PO box.
func IsStreetAddress(v string) bool {
	v = strings.TrimSpace(v)
	return len(v) <= 200 && (streetRE.MatchString(v) || euroRE.MatchString(v) || poBoxRE.MatchString(v))
}

// nameWords splits a value into the words of a person's name, or nil when
// it is not one: one to four words of letters (apostrophes, hyphens),
// each capitalised except particles (van der Merwe, da Silva), no digits.
func nameWords(v string) []string {
	v = strings.TrimSpace(strings.Replace(v, ",", " ", 1))
	words := strings.Fields(v)
	if len(words) == 0 || len(words) > 5 || len(v) > 80 {
		return nil
	}
	for _, w := range words {
		rs := []rune(w)
		if particles[strings.ToLower(w)] {
			continue
		}
		if !unicode.IsUpper(rs[0]) {
			return nil
		}
		for _, r := range rs {
			if !unicode.IsLetter(r) && r != '\'' && r != '’' && r != '-' && r != '.' {
				return nil
			}
		}
	}
	return words
}

var particles = set("van", "der", "de", "den", "du", "von", "la", "le", "da", "del", "della", "dos", "das", "bin", "al", "el", "ter", "ten", "mc")

// IsPersonName reports whether v is a name (one to four capitalised
// words) of which at least one word is a common first name or surname.
func IsPersonName(v string) bool {
	for _, w := range nameWords(v) {
		for _, part := range strings.Split(strings.ToLower(w), "-") {
			lw := strings.Trim(part, ".'’")
			if firstNames[lw] || lastNames[lw] {
				return true
			}
		}
	}
	return false
}

// isFullName: a person's name of at least two words.
func isFullName(v string) bool {
	return len(nameWords(v)) >= 2 && IsPersonName(v)
}

var secretREs = []*regexp.Regexp{
	regexp.MustCompile(`^(?:sk|pk|rk)_(?:live|test)_[A-Za-z0-9]{16,}$`),               // Stripe
	regexp.MustCompile(`^(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}$`),                  // AWS access key id
	regexp.MustCompile(`^gh[pousr]_[A-Za-z0-9]{36,}$`),                                // GitHub
	regexp.MustCompile(`^github_pat_[A-Za-z0-9_]{40,}$`),                              //
	regexp.MustCompile(`^xox[abposr]-[A-Za-z0-9-]{10,}$`),                             // Slack
	regexp.MustCompile(`^AIza[0-9A-Za-z_-]{35}$`),                                     // Google API key
	regexp.MustCompile(`^(?:glpat|npm|pypi|shpat|shpss|SG)[-_.][A-Za-z0-9_.-]{20,}$`), // GitLab, npm, PyPI, Shopify, SendGrid
	regexp.MustCompile(`^-----BEGIN (?:[A-Z]+ )*PRIVATE KEY-----`),                    // PEM
	regexp.MustCompile(`^\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}$`),                      // bcrypt
	regexp.MustCompile(`^\$argon2(?:id|i|d)\$`),                                       // argon2
	regexp.MustCompile(`^\$(?:1|5|6|y|7)\$[./A-Za-z0-9$=,]{8,}$`),                     // crypt(3), yescrypt, scrypt
	regexp.MustCompile(`^(?:pbkdf2_sha256|pbkdf2_sha1|argon2|bcrypt_sha256)\$`),       // Django
	regexp.MustCompile(`^(?:scrypt|pbkdf2):[a-z0-9:]+\$`),                             // Werkzeug
	regexp.MustCompile(`^SCRAM-SHA-256\$\d+:`),                                        // PostgreSQL
	regexp.MustCompile(`^md5[0-9a-f]{32}$`),                                           // PostgreSQL md5
}

// IsKnownSecret reports whether v has the shape of a credential: a JSON
// Web Token, a provider's key prefix (sk_live_, AKIA…, ghp_, xoxb-), a
// PEM private key or a password hash format (bcrypt, argon2, crypt,
// PBKDF2, SCRAM).
func IsKnownSecret(v string) bool {
	if IsJWT(v) {
		return true
	}
	for _, re := range secretREs {
		if re.MatchString(v) {
			return true
		}
	}
	return false
}

var jwtRE = regexp.MustCompile(`^[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*$`)

// IsJWT reports whether v is a compact JWS: three base64url parts of which
// the first decodes to a JSON object with "alg".
func IsJWT(v string) bool {
	if !jwtRE.MatchString(v) {
		return false
	}
	head, err := base64.RawURLEncoding.DecodeString(v[:strings.IndexByte(v, '.')])
	if err != nil {
		return false
	}
	var h map[string]any
	if json.Unmarshal(head, &h) != nil {
		return false
	}
	_, ok := h["alg"]
	return ok
}

// Entropy is the Shannon entropy of v in bits per character.
func Entropy(v string) float64 {
	if v == "" {
		return 0
	}
	counts := map[rune]int{}
	n := 0
	for _, r := range v {
		counts[r]++
		n++
	}
	h := 0.0
	for _, c := range counts {
		p := float64(c) / float64(n)
		h -= p * math.Log2(p)
	}
	return h
}

var (
	hexRE  = regexp.MustCompile(`^(?:0x)?[0-9a-fA-F]+$`)
	b64RE  = regexp.MustCompile(`^[A-Za-z0-9+/_-]+={0,2}$`)
	uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// IsHighEntropy reports whether v looks like a random key: hex of at
// least 32 digits with at least 3 bits of entropy per character, or
// base64 of at least 24 characters mixing upper case, lower case and
// digits with at least 4 bits per character. UUIDs and numbers are not
// keys. Checksums share the shape, so this counts only with a name.
func IsHighEntropy(v string) bool {
	if uuidRE.MatchString(v) || strings.ContainsAny(v, " \t\n") {
		return false
	}
	if hexRE.MatchString(v) {
		h := strings.TrimPrefix(v, "0x")
		if digitsOf(h, "") == h {
			return false
		}
		return len(h) >= 32 && Entropy(h) >= 3.0
	}
	if len(v) < 24 || !b64RE.MatchString(v) {
		return false
	}
	var upper, lower, digit int
	for _, r := range v {
		switch {
		case r >= 'A' && r <= 'Z':
			upper++
		case r >= 'a' && r <= 'z':
			lower++
		case r >= '0' && r <= '9':
			digit++
		}
	}
	return upper > 0 && lower > 0 && digit >= 2 && Entropy(v) >= 4.0
}

// parseDate reads the date at the start of a value (YYYY-MM-DD, as
// PostgreSQL prints date and timestamp).
func parseDate(v string) (time.Time, bool) {
	if len(v) < 10 {
		return time.Time{}, false
	}
	t, err := time.Parse("2006-01-02", v[:10])
	return t, err == nil
}

// age is the whole years between t and the reference date.
func age(t time.Time) float64 {
	return now().Sub(t).Hours() / (24 * 365.25)
}

// birthDates judges a column of dates as dates of birth: the share of
// values that are plausible birth dates (ages 16 to 110), and whether the
// column as a whole looks like one (at least 90% plausible, median age 18
// to 90, ages spread by at least 5 years, no date in the future), which
// hire dates, order dates and timestamps do not.
func birthDates(values []string) (plausible int, column bool) {
	var ages []float64
	for _, v := range values {
		t, ok := parseDate(v)
		if !ok {
			continue
		}
		a := age(t)
		ages = append(ages, a)
		if a >= 16 && a <= 110 {
			plausible++
		}
	}
	if len(ages) < minValues {
		return plausible, false
	}
	mean, minAge := 0.0, math.Inf(1)
	for _, a := range ages {
		mean += a
		minAge = math.Min(minAge, a)
	}
	mean /= float64(len(ages))
	variance := 0.0
	for _, a := range ages {
		variance += (a - mean) * (a - mean)
	}
	sd := math.Sqrt(variance / float64(len(ages)))
	med := median(ages)
	return plausible, float64(plausible) >= certain*float64(len(ages)) && minAge >= 0 && med >= 18 && med <= 90 && sd >= 5
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}
