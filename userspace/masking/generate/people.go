package generate

import "strings"

// firstNames and lastNames are common given names and surnames from
// several countries (English-speaking, European, Latin American, African,
// Asian), lower case: the person-name detector needs one word of a value
// to be among them.
var firstNames = set(strings.Fields(`
aaron abdul abigail adam adrian ahmed aisha alan albert alex alexander alexandra alice alicia amanda amber
amelia amy ana andrea andrew angela anita ann anna anne anthony antonio arthur ashley barbara ben benjamin
beth betty beverly bianca bilal bob bongani brandon brenda brian bruce bryan carl carla carlos carmen carol
caroline catherine charles charlie charlotte chen cheryl chloe chris christian christina christine
christopher claire daniel danielle david deborah debra denise dennis diana diane donald donna dorothy
douglas dylan edward elena elizabeth ella emily emma eric erin ethan eva evelyn fatima fernando frances
francisco frank gabriel gary george gerald grace gregory hannah harold harry heather helen henry hiroshi
ian isabella jack jacob james jane janet jason jean jeffrey jennifer jeremy jessica joan joe john jonathan
jose joseph joshua joyce juan judith julia julie justin karen katherine kathleen kathryn kayla keith kelly
kenneth kevin kimberly kyle laura lauren lawrence lebo lerato li linda lisa liam lucas lucy luis lungile
madison mandla margaret maria marie mark martha mary matthew megan melissa michael michelle mohammed
mohamed muhammad nancy naledi natalie nathan nicholas nicole noah nomsa nomvula olivia oscar pamela patricia
patrick paul pedro peter philip pieter priya rachel rahul ralph raymond rebecca richard robert roger ronald
rose ruth ryan samantha samuel sandra sara sarah scott sean sharon shirley sibusiso sipho sofia sophia
stephanie stephen steven susan tebogo teresa terry thabo thandi thomas timothy tyler victoria vincent
virginia walter wayne wei william yusuf zanele zoe`)...)

var lastNames = set(strings.Fields(`
adams ahmed ali allen alvarez anderson bailey baker barnes bell bennett botha brooks brown butler
campbell carter castillo chen clark coetzee collins cook cooper cox cruz davis diaz dlamini edwards evans
fisher flores foster garcia gomez gonzalez gray green griffin hall harris hernandez hill hughes jackson
james jenkins johnson jones kelly khan khumalo kim king kumar lee lewis li long lopez martin martinez
mathebula mbeki miller mitchell mokoena molefe moore morales morgan morris murphy myers naidoo ndlovu
nelson ngcobo nguyen nkosi nel nowak ortiz parker patel perez perry peterson phillips powell price
ramirez reddy reed reyes richardson rivera roberts robinson rodriguez rogers ross russell sanchez sanders
schmidt scott shabalala shah silva singh smith stewart sullivan taylor thomas thompson torres turner
van der merwe walker wang ward watson white williams wilson wood wright wu yang young zulu mahlangu
fourie pretorius venter steyn kruger muller weber schneider fischer meyer wagner becker hoffmann rossi
russo ferrari esposito bianchi romano dubois moreau laurent simon michel lefebvre leroy tanaka suzuki
sato watanabe yamamoto ivanov petrov kowalski santos oliveira souza pereira costa almeida`)...)
