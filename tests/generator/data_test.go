package generator

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// The labelled data set: eight tables of realistic generated rows, every
// column labelled sensitive or not by what an operator would want masked
// (direct identifiers, contact data, credentials, pay), independently of
// the generator's rules. Traps: a 16-digit number that passes Luhn one
// time in ten, an order number shaped like a passport number, a SHA-256
// checksum, free-text notes with an occasional email inside, hire dates,
// statuses, postal codes, product names.

// column is one labelled column: its DDL type and whether it is sensitive.
type column struct {
	name, typ string
	sensitive bool
}

type table struct {
	name    string
	columns []column
	rows    int
	// gen makes row i (values in column order).
	gen func(r *rand.Rand, i int) []any
	// ddl replaces the CREATE TABLE column list's tail (partitioning).
	suffix string
}

// reference is the date the data's ages are computed from.
var reference = time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC)

var (
	firstNames = []string{"Thabo", "Lindiwe", "Pieter", "Anika", "Keabetswe", "Sarah", "Michael", "Priya", "Johan",
		"Nokuthula", "David", "Fatima", "Liam", "Ayesha", "Carlos", "Mei", "Olusegun", "Ingrid", "Rajesh", "Zanele",
		"Emma", "Tshepo", "Hannah", "Kofi", "Sofia", "Noah", "Amahle", "Willem", "Grace", "Yusuf", "Refilwe", "Marius"}
	lastNames = []string{"Nkosi", "Botha", "Naidoo", "Smith", "Dlamini", "van Wyk", "Pillay", "Mokoena", "Jacobs",
		"Khumalo", "Steenkamp", "O'Connor", "Mahlangu", "Okafor", "Andersson", "Chen", "Fernandes", "Govender",
		"Mthembu", "Schoeman", "Williams", "Baloyi", "du Plessis", "Moloi", "Kruger", "Ramaphosa", "Erasmus"}
	streets = []string{"Main Road", "Long Street", "Oak Avenue", "Jan Smuts Drive", "Church Street", "Beach Road",
		"Voortrekker Road", "Rivonia Boulevard", "Kloof Street", "Victoria Road", "Park Lane", "Market Street"}
	cities   = []string{"Cape Town", "Johannesburg", "Durban", "Pretoria", "Gqeberha", "Bloemfontein", "London", "Austin"}
	domains  = []string{"example.com", "mail.example.org", "example.co.za", "corp.example.net"}
	statuses = []string{"active", "pending", "suspended", "closed"}
	depts    = []string{"Finance", "Engineering", "Sales", "Support", "Legal", "Operations"}
	agents   = []string{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X)",
		"okhttp/4.12.0", "PostmanRuntime/7.37.0", "curl/8.5.0"}
	notes = []string{"Called about a late delivery", "Prefers contact in the mornings", "VIP: escalate to team lead",
		"Asked for an invoice copy; sent it to accounts@example.com", "Moved to the Pro plan", "Duplicate account merged",
		"Requested a refund for order", "Complained about the app login"}
	products = []string{"Garden Hose", "Rose Scented Candle", "Espresso Machine", "Wireless Mouse", "Hiking Boots",
		"Yoga Mat", "Desk Lamp", "Water Bottle", "Backpack", "Chef Knife", "Bluetooth Speaker", "Rain Jacket"}
)

func pick[T any](r *rand.Rand, xs []T) T { return xs[r.IntN(len(xs))] }

func luhnDigit(body string) string {
	sum := 0
	for i := len(body) - 1; i >= 0; i-- {
		n := int(body[i] - '0')
		if (len(body)-i)%2 == 1 {
			n *= 2
			if n > 9 {
				n -= 9
			}
		}
		sum += n
	}
	return strconv.Itoa((10 - sum%10) % 10)
}

func digits(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		b.WriteByte(byte('0' + r.IntN(10)))
	}
	return b.String()
}

func birthDate(r *rand.Rand) time.Time {
	return reference.AddDate(-18-r.IntN(62), -r.IntN(12), -r.IntN(28))
}

func saID(r *rand.Rand, dob time.Time) string {
	body := dob.Format("060102") + digits(r, 4) + strconv.Itoa(r.IntN(2)) + "8"
	return body + luhnDigit(body)
}

func phone(r *rand.Rand) string {
	switch r.IntN(4) {
	case 0:
		return fmt.Sprintf("+27 %d %s %s", 60+r.IntN(25), digits(r, 3), digits(r, 4))
	case 1:
		return fmt.Sprintf("0%d %s %s", 60+r.IntN(25), digits(r, 3), digits(r, 4))
	case 2:
		return fmt.Sprintf("+1 %d %d %s", 201+r.IntN(700), 201+r.IntN(700), digits(r, 4))
	}
	return fmt.Sprintf("(0%d) %s-%s", 10+r.IntN(80), digits(r, 3), digits(r, 4))
}

func email(r *rand.Rand, first, last string) string {
	l := strings.ToLower(strings.ReplaceAll(strings.ReplaceAll(last, " ", ""), "'", ""))
	switch r.IntN(3) {
	case 0:
		return fmt.Sprintf("%s.%s@%s", strings.ToLower(first), l, pick(r, domains))
	case 1:
		return fmt.Sprintf("%c%s%d@%s", strings.ToLower(first)[0], l, r.IntN(100), pick(r, domains))
	}
	return fmt.Sprintf("%s_%s@%s", strings.ToLower(first), l, pick(r, domains))
}

func card(r *rand.Rand) string {
	var body string
	switch r.IntN(4) {
	case 0:
		body = "4" + digits(r, 14)
	case 1:
		body = strconv.Itoa(51+r.IntN(5)) + digits(r, 13)
	case 2:
		body = pick(r, []string{"34", "37"}) + digits(r, 12)
	default:
		body = "6011" + digits(r, 11)
	}
	n := body + luhnDigit(body)
	if r.IntN(2) == 0 && len(n) == 16 {
		return n[:4] + " " + n[4:8] + " " + n[8:12] + " " + n[12:]
	}
	return n
}

func iban(r *rand.Rand) string {
	country, bban := "GB", ""
	switch r.IntN(5) {
	case 0:
		bban = "NWBK" + digits(r, 14)
	case 1:
		country, bban = "DE", digits(r, 18)
	case 2:
		country, bban = "NL", "ABNA"+digits(r, 10)
	case 3:
		country, bban = "FR", digits(r, 10)+"A"+digits(r, 10)+digits(r, 2)
	default:
		country, bban = "ES", digits(r, 20)
	}
	rem := 0
	for _, c := range bban + country + "00" {
		if c >= 'A' {
			rem = (rem*100 + int(c-'A') + 10) % 97
		} else {
			rem = (rem*10 + int(c-'0')) % 97
		}
	}
	s := fmt.Sprintf("%s%02d%s", country, 98-rem, bban)
	if r.IntN(2) == 0 {
		var b strings.Builder
		for i, c := range s {
			if i > 0 && i%4 == 0 {
				b.WriteByte(' ')
			}
			b.WriteRune(c)
		}
		return b.String()
	}
	return s
}

func ssn(r *rand.Rand) string {
	area := 1 + r.IntN(899)
	if area == 666 {
		area = 665
	}
	return fmt.Sprintf("%03d-%02d-%04d", area, 1+r.IntN(99), 1+r.IntN(9999))
}

func hexOf(r *rand.Rand, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return hex.EncodeToString(b)
}

// uuid is a version 4 UUID.
func uuid(r *rand.Rand) [16]byte {
	var u [16]byte
	for i := range u {
		u[i] = byte(r.Uint32())
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return u
}

func b64url(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func jwt(r *rand.Rand, sub int) string {
	sig := make([]byte, 32)
	for i := range sig {
		sig[i] = byte(r.Uint32())
	}
	return b64url(`{"alg":"HS256","typ":"JWT"}`) + "." + b64url(fmt.Sprintf(`{"sub":"%d","exp":%d}`, sub, 1750000000+r.IntN(1e6))) +
		"." + base64.RawURLEncoding.EncodeToString(sig)
}

func alnum(r *rand.Rand, n int) string {
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
	b := make([]byte, n)
	for i := range b {
		b[i] = chars[r.IntN(len(chars))]
	}
	return string(b)
}

func street(r *rand.Rand) string {
	s := fmt.Sprintf("%d %s", 1+r.IntN(250), pick(r, streets))
	if r.IntN(4) == 0 {
		s = fmt.Sprintf("Unit %d, %s", 1+r.IntN(40), s)
	}
	return s + ", " + pick(r, cities)
}

func ip(r *rand.Rand) string {
	if r.IntN(4) == 0 {
		return fmt.Sprintf("2001:db8:%x:%x::%x", r.IntN(65536), r.IntN(65536), 1+r.IntN(65535))
	}
	return netip.AddrFrom4([4]byte{byte(1 + r.IntN(223)), byte(r.IntN(256)), byte(r.IntN(256)), byte(1 + r.IntN(254))}).String()
}

func ts(r *rand.Rand, daysBack int) time.Time {
	return reference.Add(-time.Duration(r.IntN(daysBack*24*3600)) * time.Second)
}

func nullable(r *rand.Rand, pNull float64, v any) any {
	if r.Float64() < pNull {
		return nil
	}
	return v
}

var tables = []table{
	{name: "customers", rows: 300, columns: []column{
		{"id", "integer PRIMARY KEY", false},
		{"first_name", "text NOT NULL", true},
		{"last_name", "text NOT NULL", true},
		{"email", "text", true},
		{"phone", "text", true},
		{"date_of_birth", "date", true},
		{"id_number", "varchar(13)", true},
		{"status", "text", false},
		{"loyalty_points", "integer", false},
		{"country", "char(2)", false},
		{"notes", "text", false},
		{"created_at", "timestamptz", false},
		{"marketing_opt_in", "boolean", false},
	}, gen: func(r *rand.Rand, i int) []any {
		first, last, dob := pick(r, firstNames), pick(r, lastNames), birthDate(r)
		return []any{i + 1, first, last, nullable(r, 0.05, email(r, first, last)), nullable(r, 0.1, phone(r)), dob,
			saID(r, dob), pick(r, statuses), r.IntN(5000), pick(r, []string{"ZA", "ZA", "GB", "US"}),
			nullable(r, 0.6, pick(r, notes)), ts(r, 900), r.IntN(2) == 0}
	}},
	{name: "employees", rows: 200, columns: []column{
		{"employee_id", "integer PRIMARY KEY", false},
		{"full_name", "varchar(120)", true},
		{"work_email", "text", true},
		{"ssn", "text", true},
		{"hire_date", "date", false},
		{"salary", "numeric(10,2)", true},
		{"department", "text", false},
		{"manager_id", "integer", false},
		{"passport_no", "text", true},
		{"home_address", "text", true},
		{"mobile", "text", true},
		{"badge_code", "text", false},
	}, gen: func(r *rand.Rand, i int) []any {
		first, last := pick(r, firstNames), pick(r, lastNames)
		passport := fmt.Sprintf("%c%s", 'A'+rune(r.IntN(26)), digits(r, 8))
		return []any{1000 + i, first + " " + last, email(r, first, last), ssn(r), reference.AddDate(-r.IntN(27), -r.IntN(12), -r.IntN(28)),
			float64(18000000+r.IntN(90000000)) / 100, pick(r, depts), nullable(r, 0.1, 1000+r.IntN(20)),
			nullable(r, 0.3, passport), street(r), phone(r), fmt.Sprintf("EMP-%04d", i+1)}
	}},
	{name: "payments", rows: 400, columns: []column{
		{"payment_id", "bigint PRIMARY KEY", false},
		{"customer_id", "integer", false},
		{"card_number", "text", true},
		{"card_last4", "text", false},
		{"card_brand", "text", false},
		{"iban", "text", true},
		{"amount", "numeric(12,2)", false},
		{"currency", "char(3)", false},
		{"order_number", "text", false},
		{"tracking_code", "bigint", false},
		{"status", "text", false},
		{"paid_at", "timestamptz", false},
	}, gen: func(r *rand.Rand, i int) []any {
		c := card(r)
		d := strings.ReplaceAll(c, " ", "")
		brand := map[byte]string{'4': "visa", '5': "mastercard", '3': "amex", '6': "discover"}[d[0]]
		return []any{int64(500000 + i), 1 + r.IntN(300), nullable(r, 0.3, c), d[len(d)-4:], brand, nullable(r, 0.5, iban(r)),
			float64(r.IntN(2000000)) / 100, pick(r, []string{"ZAR", "USD", "EUR"}),
			"SO" + digits(r, 8), int64(4000000000000000 + r.Int64N(999999999999999)),
			pick(r, []string{"settled", "pending", "refunded", "failed"}), ts(r, 400)}
	}},
	{name: "sessions", rows: 300, columns: []column{
		{"id", "bigserial PRIMARY KEY", false},
		{"user_id", "integer", false},
		{"token", "text", true},
		{"refresh_token", "text", true},
		{"ip_address", "inet", true},
		{"user_agent", "text", false},
		{"created_at", "timestamptz", false},
		{"expires_at", "timestamptz", false},
	}, gen: func(r *rand.Rand, i int) []any {
		t := ts(r, 30)
		return []any{int64(i + 1), 1 + r.IntN(300), hexOf(r, 32), jwt(r, i), netip.MustParseAddr(ip(r)), pick(r, agents), t, t.Add(24 * time.Hour)}
	}},
	{name: "addresses", rows: 250, columns: []column{
		{"address_id", "integer PRIMARY KEY", false},
		{"customer_id", "integer", false},
		{"street_address", "text", true},
		{"city", "text", false},
		{"postal_code", "text", false},
		{"country_code", "text", false},
		{"is_primary", "boolean", false},
		{"delivery_instructions", "text", false},
	}, gen: func(r *rand.Rand, i int) []any {
		return []any{i + 1, 1 + r.IntN(300), fmt.Sprintf("%d %s", 1+r.IntN(300), pick(r, streets)), pick(r, cities),
			fmt.Sprintf("%04d", r.IntN(10000)), "ZA", r.IntN(3) == 0,
			nullable(r, 0.5, pick(r, []string{"Leave at the gate", "Call on arrival", "Ring the bell twice", "Reception desk"}))}
	}},
	{name: "audit_logs", rows: 20000, columns: []column{
		{"id", "bigserial PRIMARY KEY", false},
		{"actor_email", "text", true},
		{"action", "text", false},
		{"client_ip", "text", true},
		{"request_id", "uuid", false},
		{"payload_sha256", "text", false},
		{"api_key", "text", true},
		{"details", "text", false},
		{"occurred_at", "timestamptz", false},
	}, gen: func(r *rand.Rand, i int) []any {
		sum := sha256.Sum256([]byte(strconv.Itoa(i)))
		return []any{int64(i + 1), email(r, pick(r, firstNames), pick(r, lastNames)),
			pick(r, []string{"login", "logout", "update_profile", "export_report", "change_plan", "reset_password"}),
			ip(r), uuid(r),
			hex.EncodeToString(sum[:]), nullable(r, 0.7, "sk_live_"+alnum(r, 24)),
			pick(r, []string{"changed plan from basic to pro", "password reset requested", "report exported as CSV", "session expired", ""}),
			ts(r, 365)}
	}},
	{name: "events", rows: 400, suffix: " PARTITION BY RANGE (occurred_on)", columns: []column{
		{"event_id", "bigint", false},
		{"user_email", "text", true},
		{"event_type", "text", false},
		{"occurred_on", "date NOT NULL", false},
	}, gen: func(r *rand.Rand, i int) []any {
		return []any{int64(i + 1), email(r, pick(r, firstNames), pick(r, lastNames)),
			pick(r, []string{"page_view", "signup", "purchase", "logout"}), time.Date(2024+i%2, time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)}
	}},
	// Naming styles the dictionary was not written from: a legacy
	// schema's abbreviations, and an ORM's camelCase.
	{name: "contacts", rows: 150, columns: []column{
		{"contact_id", "integer PRIMARY KEY", false},
		{"surname", "text", true},
		{"given_names", "text", true},
		{"e_mail", "text", true},
		{"cell_no", "text", true},
		{"tel_work", "text", true},
		{"birthdate", "date", true},
		{"company_name", "text", false},
		{"job_title", "text", false},
		{"website", "text", false},
		{"nationality", "text", false},
		{"bank_acct_no", "text", true},
		{"tax_number", "text", true},
		{"pwd_hash", "text", true},
		{"aws_access_key_id", "text", true},
		{"preferred_language", "text", false},
		{"gender", "text", false},
	}, gen: func(r *rand.Rand, i int) []any {
		first, last := pick(r, firstNames), pick(r, lastNames)
		given := first
		if r.IntN(3) == 0 {
			given += " " + pick(r, firstNames)
		}
		company := pick(r, []string{"Acme Logistics", "Blue Crane Foods", "Karoo Solar", "Table Bay Traders", "Ubuntu Software"})
		if r.IntN(5) < 2 {
			company = pick(r, lastNames) + pick(r, []string{" & Sons", " Holdings", " Attorneys"})
		}
		return []any{i + 1, last, given, nullable(r, 0.1, email(r, first, last)), nullable(r, 0.2, phone(r)), nullable(r, 0.5, phone(r)),
			nullable(r, 0.2, birthDate(r)), company,
			pick(r, []string{"Senior Accountant", "Software Engineer", "Sales Manager", "Nurse", "Teacher", "Director"}),
			nullable(r, 0.5, "https://www."+strings.ToLower(strings.Fields(company)[0])+".example.com/"),
			pick(r, []string{"South African", "British", "Kenyan", "Indian", "German"}),
			nullable(r, 0.3, digits(r, 10+r.IntN(2))), nullable(r, 0.4, digits(r, 10)),
			"$2b$12$" + strings.ReplaceAll(strings.ReplaceAll(alnum(r, 53), "+", "."), "=", "/"),
			nullable(r, 0.8, "AKIA"+strings.ToUpper(alnum(r, 16))),
			pick(r, []string{"English", "Afrikaans", "isiZulu", "isiXhosa", "Sesotho"}), pick(r, []string{"F", "M", "X"})}
	}},
	{name: "UserProfiles", rows: 200, columns: []column{
		{"id", "uuid PRIMARY KEY", false},
		{"emailAddress", "text NOT NULL", true},
		{"phoneNumber", "text", true},
		{"dateOfBirth", "date", true},
		{"displayName", "text", true},
		{"avatarUrl", "text", false},
		{"lastLoginIp", "text", true},
		{"passwordResetToken", "text", true},
		{"createdAt", "timestamptz", false},
		{"isVerified", "boolean", false},
		{"timeZone", "text", false},
		{"referralCode", "text", false},
		{"stripeCustomerId", "text", false},
	}, gen: func(r *rand.Rand, i int) []any {
		first, last := pick(r, firstNames), pick(r, lastNames)
		return []any{uuid(r), email(r, first, last), nullable(r, 0.3, phone(r)), nullable(r, 0.4, birthDate(r)),
			first + " " + last[:1] + ".", nullable(r, 0.5, fmt.Sprintf("https://cdn.example.com/avatars/%d.png", i)),
			nullable(r, 0.1, ip(r)), nullable(r, 0.85, alnum(r, 43)), ts(r, 700), r.IntN(2) == 0,
			pick(r, []string{"Africa/Johannesburg", "Europe/London", "America/New_York"}), "REF-" + strings.ToUpper(alnum(r, 6)),
			"cus_" + alnum(r, 14)}
	}},
	{name: "products", rows: 100, columns: []column{
		{"product_id", "integer PRIMARY KEY", false},
		{"name", "text", false},
		{"sku", "text", false},
		{"price", "numeric(10,2)", false},
		{"description", "text", false},
	}, gen: func(r *rand.Rand, i int) []any {
		p := pick(r, products)
		return []any{i + 1, p, fmt.Sprintf("SKU-%05d", r.IntN(100000)), float64(10+r.IntN(2000)) + 0.99,
			"A " + strings.ToLower(p) + " for everyday use"}
	}},
}

// labels maps "table.column" to sensitive.
func labels() map[string]bool {
	m := map[string]bool{}
	for _, t := range tables {
		for _, c := range t.columns {
			m[t.name+"."+c.name] = c.sensitive
		}
	}
	return m
}

// dataset is the loaded data: every value of every sensitive or trap
// column, which must never appear in the generator's output.
type dataset struct {
	secretValues []string
}

// load creates the tables (and a table the scan's account may not read)
// and fills them.
func load(ctx context.Context, superDSN string) (*dataset, error) {
	conn, err := pgx.Connect(ctx, superDSN)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	ds := &dataset{}
	r := rand.New(rand.NewPCG(20250601, 7))
	traps := map[string]bool{"payments.order_number": true, "payments.tracking_code": true, "audit_logs.payload_sha256": true,
		"customers.notes": true}
	for _, t := range tables {
		var defs, names []string
		for _, c := range t.columns {
			defs = append(defs, pgx.Identifier{c.name}.Sanitize()+" "+c.typ)
			names = append(names, c.name)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s (%s)%s", pgx.Identifier{t.name}.Sanitize(), strings.Join(defs, ", "), t.suffix)); err != nil {
			return nil, fmt.Errorf("create %s: %w", t.name, err)
		}
		if t.suffix != "" {
			for _, y := range []int{2024, 2025} {
				if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE TABLE %s_%d PARTITION OF %s FOR VALUES FROM ('%d-01-01') TO ('%d-01-01')",
					t.name, y, t.name, y, y+1)); err != nil {
					return nil, err
				}
			}
		}
		rows := make([][]any, t.rows)
		for i := range rows {
			rows[i] = t.gen(r, i)
			for j, c := range t.columns {
				if v := rows[i][j]; v != nil && (c.sensitive || traps[t.name+"."+c.name]) {
					s := fmt.Sprint(v)
					if tm, ok := v.(time.Time); ok {
						s = tm.Format("2006-01-02")
					}
					ds.secretValues = append(ds.secretValues, s)
				}
			}
		}
		if _, err := conn.CopyFrom(ctx, pgx.Identifier{t.name}, names, pgx.CopyFromRows(rows)); err != nil {
			return nil, fmt.Errorf("copy into %s: %w", t.name, err)
		}
	}
	for _, stmt := range []string{
		"CREATE TABLE vault (id integer, master_password text)",
		"INSERT INTO vault VALUES (1, 'hunter2-very-secret')",
		"REVOKE ALL ON vault FROM PUBLIC",
		"CREATE SCHEMA empty_schema",
		"GRANT USAGE ON SCHEMA empty_schema TO PUBLIC",
		"ANALYZE",
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
	}
	ds.secretValues = append(ds.secretValues, "hunter2-very-secret")
	return ds, nil
}
