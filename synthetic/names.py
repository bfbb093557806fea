"""Embedded name and street tables for the synthetic city.

Every table lists common, generic names in rough order of popularity; weights are derived from the rank
(a Zipf-like curve), so no table is a copy of a real register. Names are combined at random: no row the
generator writes describes a real person.

Given names and surnames differ by race/ethnicity group (codes as in SPEC.md) and overlap partly.
Canonical spellings carry their accents ("José", "Núñez"); agencies render them differently.
"""

from __future__ import annotations

import numpy as np

GROUPS = ("HI", "AI", "AS", "BL", "PI", "WH", "MR")

# City shares of children by race/ethnicity (a mid-sized, diverse US city).
RACE_SHARES = {"HI": 0.27, "AI": 0.01, "AS": 0.07, "BL": 0.26, "PI": 0.01, "WH": 0.31, "MR": 0.07}

_CHILD_F = {
    "WH": """Emma Olivia Ava Sophia Isabella Charlotte Amelia Emily Madison Abigail Harper Avery Elizabeth Ella
        Chloe Grace Lily Hannah Addison Natalie Samantha Evelyn Katherine Claire Sarah Anna Riley Zoey Brooklyn
        Nora Savannah Allison Leah Audrey Lucy Caroline Paisley Peyton Kaylee Margaret Alexis Morgan Taylor
        Hailey Jessica Ashley Rebecca Victoria Catherine Molly Madeline Isabel""",
    "BL": """Aaliyah Ava Madison Kennedy Brooklyn Taylor Nevaeh Jasmine Destiny Chloe Aubrey Maya Skylar Londyn
        Jada Kayla Trinity Zoe Imani Mya Gabrielle Amari Olivia Harmony Makayla Alexis Jordyn Morgan Nia
        Serenity Kiara Diamond Brianna Janiyah Layla Naomi Autumn Faith Jayla Aniyah Sanaa Kamari Zuri Ariana
        Paris Tiana Kendall Camille Tatiana Samantha""",
    "HI": """Sofía Isabella Camila Valentina Valeria Mia Ximena Natalia Victoria Daniela Emily Gabriela Lucía
        María Ashley Alexa Génesis Melanie Andrea Mariana Fernanda Allison Jimena Renata Guadalupe Ana Paola
        Regina Elena Adriana Alejandra Karla Jazmín Esmeralda Yaretzi Brianna Angélica Itzel Leslie Vanessa
        Diana Marisol Julieta Luciana Abril Catalina Nayeli Carolina Rosa Liliana""",
    "AS": """Emily Chloe Grace Sophia Olivia Emma Isabella Hannah Michelle Angela Jennifer Vivian Ashley Amy
        Priya Ananya Aanya Diya Saanvi Ishita Mei Ling Yuna Hana Sakura Ji-woo Seo-yeon Min-ji Thao Linh Ngoc
        Anh Mai Trang Kim Jasmine Ava Nicole Tiffany Jessica Fatima Aisha Zara Riya Kavya Naomi Sarah Lily
        Claire Yuki""",
    "AI": "Dakota Cheyenne Winona Aiyana Kaya Sierra Shania Tala Savannah Jade",
    "PI": "Leilani Malia Kalani Keala Mele Losa Sina Moana Kaiya Lani",
}
_CHILD_M = {
    "WH": """Liam Noah William James Logan Benjamin Mason Elijah Oliver Jacob Lucas Michael Alexander Ethan Daniel
        Matthew Henry Jackson Samuel Sebastian David Carter Wyatt Jack Owen Luke Gabriel Isaac Nathan Andrew
        Joshua Christopher Ryan Dylan Caleb Hunter Connor Tyler Brayden Cole Robert Thomas Charles Joseph John
        Nicholas Zachary Austin Jonathan Evan Theodore Steven""",
    "BL": """Jayden Jeremiah Elijah Josiah Isaiah Christopher Joshua Michael Jordan Cameron Noah Aiden Justin
        Caleb Malik Xavier Jalen Darius Jaylen Kingston Bryson Amir Brandon Marcus Anthony Dominic Tyler Jacob
        Carter Kameron Micah Andre Terrell DeShawn Jamal Devin Chase Zion Kayden Darnell Malcolm Trevon Marquis
        Khalil Jaden Ethan Jason Tristan Derrick William""",
    "HI": """Santiago Mateo Sebastián Matías Diego Leonardo Emiliano Daniel Alejandro Nicolás Ángel Gael Adrián
        David José Juan Luis Carlos Jesús Miguel Jorge Antonio Fernando Ricardo Eduardo Francisco Javier Andrés
        Manuel Julián Iker Joaquín Rafael Christopher Anthony Kevin Bryan Jonathan Cristian Alexander Isaac
        Iván Óscar Marco Pablo Roberto Enrique Ignacio Ramón Martín""",
    "AS": """Ethan Ryan Daniel Kevin Brandon Justin Andrew Jason Eric Lucas Aarav Arjun Vihaan Aditya Rohan
        Krishna Dev Ishaan Minh Huy Khoa Bao Duc Tuan Hoang Wei Jun Hao Ming Haruto Kenji Hiroshi Min-jun
        Seo-jun Ji-ho Joon Ali Omar Muhammad Ahmed Nathan Matthew Aaron Jonathan Vincent Timothy Derek Alan
        Kai Leo""",
    "AI": "Dakota Cody Hunter Tate Koda Chayton Ezekiel Wyatt Elias Mason",
    "PI": "Keoni Kai Makoa Sione Tevita Iosefa Kekoa Ikaika Manu Lopeti",
}
_ADULT_F = {
    "WH": """Jennifer Jessica Amanda Sarah Melissa Stephanie Nicole Heather Elizabeth Megan Amy Rachel Lauren
        Kimberly Michelle Christina Rebecca Laura Emily Kelly Katherine Crystal Danielle Andrea Erin Tiffany
        Lisa Angela Mary Patricia""",
    "BL": """Tiffany Latoya Keisha Ebony Tamika Aisha Monique Shanice Jasmine Brittany Crystal Kimberly Danielle
        Tasha Lakisha Yolanda Sharonda Precious Angela Shaniqua""",
    "HI": """María Ana Guadalupe Rosa Verónica Adriana Claudia Leticia Patricia Yesenia Griselda Araceli
        Elizabeth Alejandra Gabriela Sandra Lorena Marisol Norma Silvia Maribel Blanca""",
    "AS": """Linh Thuy Hoa Lan Jennifer Michelle Grace Susan Mei Yan Priya Sunita Anjali Kavita Hye-jin Eun-ji
        Yoko Emiko Christine Nasreen""",
    "AI": "Winona Dawn Raven Lorraine Tanya",
    "PI": "Leilani Noelani Mele Ana Salote",
}
_ADULT_M = {
    "WH": """Michael Christopher Matthew Joshua David James Daniel Robert John Joseph Jason Justin Andrew Ryan
        William Brian Brandon Jonathan Nicholas Anthony Eric Adam Kevin Steven Thomas Timothy Richard Jeremy
        Jeffrey Kyle""",
    "BL": """Marcus Darnell Terrence Andre Derrick Jermaine Tyrone DeAndre Reginald Cedric Lamar Antoine Curtis
        Corey Maurice Dwayne Kenneth Travis Rodney Calvin""",
    "HI": """José Juan Luis Carlos Jesús Jorge Miguel Francisco Antonio Alejandro Manuel Ricardo Roberto Javier
        Fernando Pedro Sergio Raúl Eduardo Héctor Arturo Mario""",
    "AS": """Tuan Minh Hung Dung Wei Jian Hao Rajesh Sanjay Amit Vikram Sung-ho Jae-won Hiroshi Takeshi David
        Peter Kevin Eric Andrew""",
    "AI": "Raymond Joseph Darrell Leroy Wesley",
    "PI": "Sione Tevita Keoni Iosefa Manu",
}
_MIDDLE_F = """Marie Ann Elizabeth Rose Grace Lynn Jane Nicole Louise Michelle Renee Jean Mae Kate Hope Faith Joy
    Victoria Alexandra Isabel Guadalupe Sofía Lucía Mei Anh Simone Monique Danielle Nicole"""
_MIDDLE_M = """James Michael Lee Alexander Joseph William Thomas David Allen Ray John Daniel Edward Anthony Paul
    Christopher Andrew Robert Jesús Manuel Antonio José Luis Minh Wei Raj Jamal Andre Lamar"""

_SURNAMES = {
    "WH": """Smith Johnson Miller Brown Jones Davis Wilson Anderson Taylor Thomas Moore Martin Thompson White Clark
        Lewis Walker Hall Allen Young King Wright Scott Hill Green Adams Baker Nelson Mitchell Campbell Roberts
        Carter Phillips Evans Turner Parker Collins Edwards Stewart Morris Murphy Cook Rogers Morgan Cooper
        Peterson Reed Bailey Kelly Howard Cox Ward Richardson Wood Watson Brooks Bennett Gray Hughes Price
        Sanders Myers Long Ross Foster O'Brien O'Connor McDonald McCarthy Sullivan Schmidt Mueller Van_Dyke
        Kowalski Nowak Russo Romano Olson Larson Hansen""",
    "BL": """Williams Johnson Smith Jones Brown Jackson Davis Thomas Harris Robinson Taylor Wilson Moore White
        Washington Lee Walker Thompson Lewis Green Hall Allen Young Wright King Scott Baker Carter Mitchell
        Turner Coleman Jenkins Gordon Simmons Bell Butler Bryant Banks Jefferson Freeman Holmes Gaines Dixon
        Mack Boyd Hayes Franklin Graham Ford Reed Howard Price Warren Owens Tucker Stewart Wallace Hunter
        Henderson Sims Jordan Bailey Barnes Fields Grant Battle Pierre Toussaint Okafor Mensah Diallo Mohamed
        Ali Abdi""",
    "HI": """García Rodríguez Martínez Hernández López González Pérez Sánchez Ramírez Torres Flores Rivera Gómez
        Díaz Cruz Morales Reyes Gutiérrez Ortiz Ramos Chávez Mendoza Ruiz Álvarez Castillo Jiménez Vásquez
        Moreno Romero Herrera Medina Aguilar Vargas Guzmán Castro Méndez Muñoz Salazar Núñez Rojas Contreras
        Domínguez Soto Delgado Vega Ríos Estrada Sandoval Fuentes De_La_Cruz De_León Del_Río Santiago Figueroa
        Cabrera Ibarra Espinoza Cervantes Acosta Navarro""",
    "AS": """Nguyen Tran Le Pham Huynh Hoang Vu Vo Dang Bui Do Ngo Kim Lee Park Choi Jung Kang Cho Yoon Chen Wang
        Li Zhang Liu Yang Huang Zhao Wu Zhou Lin Chang Wong Patel Shah Singh Kumar Sharma Gupta Reddy Rao Khan
        Ahmed Chowdhury Tanaka Suzuki Yamamoto Nakamura Sato Kobayashi Santos Reyes Bautista Villanueva
        Dela_Cruz Aquino""",
    "AI": """Begay Yazzie Benally Tsosie Nez Locklear Oxendine Chavis Harjo Whitehorse Lowery Hunt Jim Cly
        Etsitty Tso Manygoats Roanhorse Smith Johnson Jackson Brown""",
    "PI": """Kealoha Kahale Akana Mahoe Kaleo Tupou Fifita Taufa Vaipulu Mahe Leota Faleolo Tuilagi Aumua Fonoti
        Tuiasosopo Sapolu Santos Borja Taitano Quinata Cruz""",
}

# Formal given name -> nicknames and short forms an agency may record instead.
NICKNAMES: dict[str, list[str]] = {
    "Robert": ["Bob", "Rob", "Bobby"], "Roberto": ["Beto"], "William": ["Will", "Bill", "Billy", "Liam"],
    "Elizabeth": ["Liz", "Beth", "Eliza", "Betsy"], "Katherine": ["Kate", "Katie", "Kathy"],
    "Catherine": ["Cathy", "Cat"], "Margaret": ["Maggie", "Meg", "Peggy"], "James": ["Jim", "Jimmy", "Jamie"],
    "Michael": ["Mike", "Mikey"], "Christopher": ["Chris", "Topher"], "Matthew": ["Matt"],
    "Nicholas": ["Nick", "Nicky"], "Alexander": ["Alex", "Xander"], "Benjamin": ["Ben", "Benny"],
    "Samuel": ["Sam", "Sammy"], "Daniel": ["Dan", "Danny"], "Joseph": ["Joe", "Joey"], "Anthony": ["Tony"],
    "Jonathan": ["Jon", "Johnny"], "Thomas": ["Tom", "Tommy"], "Andrew": ["Andy", "Drew"], "Joshua": ["Josh"],
    "Zachary": ["Zach", "Zack"], "Jacob": ["Jake"], "Nathan": ["Nate"], "Abigail": ["Abby", "Abbie"],
    "Isabella": ["Bella", "Izzy"], "Olivia": ["Liv", "Livvy"], "Samantha": ["Sam", "Sammie"],
    "Victoria": ["Tori", "Vicky"], "Jennifer": ["Jen", "Jenny"], "Jessica": ["Jess", "Jessie"],
    "Rebecca": ["Becky", "Becca"], "Gabriel": ["Gabe"], "Madison": ["Maddie", "Maddy"],
    "Francisco": ["Paco", "Pancho", "Frank"], "José": ["Pepe", "Joe"], "Guadalupe": ["Lupe", "Lupita"],
    "Alejandro": ["Alex", "Alejo"], "Jesús": ["Chuy"], "Ignacio": ["Nacho"], "Enrique": ["Kike", "Henry"],
    "Manuel": ["Manny", "Manolo"], "Eduardo": ["Lalo", "Eddie"], "Dominic": ["Dom"], "Theodore": ["Theo", "Teddy"],
    "Charlotte": ["Charlie", "Lottie"], "Charles": ["Charlie", "Chuck"], "Richard": ["Rick", "Richie"],
    "Timothy": ["Tim", "Timmy"], "Kenneth": ["Ken", "Kenny"], "Patricia": ["Pat", "Patty", "Trish"],
    "Gabriela": ["Gaby"], "Alejandra": ["Ale", "Alex"], "Fernando": ["Nando"], "Valentina": ["Vale"],
    "Santiago": ["Santi"], "Sebastián": ["Sebas", "Seb"], "Emiliano": ["Emi"], "Nicolás": ["Nico"],
    "Natalia": ["Nati", "Talia"], "Daniela": ["Dani"], "Mariana": ["Mari"], "Christina": ["Tina", "Chris"],
    "Kimberly": ["Kim"], "Stephanie": ["Steph"], "Steven": ["Steve"], "Jeremiah": ["Jerry"],
    "Isaiah": ["Ike"], "Zion": ["Z"], "Makayla": ["Kayla"], "Gabrielle": ["Gabby", "Elle"],
    "Alexandra": ["Alex", "Lexi", "Sandra"], "Evelyn": ["Evie"], "Caroline": ["Carrie"],
    "Allison": ["Allie", "Ali"], "Natalie": ["Nat"], "Audrey": ["Audie"], "Muhammad": ["Mo"], "Mohamed": ["Mo"],
}
# Spelling variants of one name; any member may be written for any other. Variants that differ only in
# accents or case are not listed: the agencies' house styles (accents stripped, upper case) produce those.
SPELLING_GROUPS: list[list[str]] = [
    ["Catherine", "Katherine", "Kathryn"], ["Sarah", "Sara"], ["John", "Jon"], ["Steven", "Stephen"],
    ["Isabel", "Isabelle", "Isobel"], ["Aaliyah", "Aliyah", "Aleah"], ["Jayden", "Jaden", "Jaiden"],
    ["Brianna", "Breanna"], ["Hailey", "Haley", "Hayley"], ["Zoey", "Zoe"], ["Camila", "Camilla"],
    ["Sofía", "Sophia"], ["Muhammad", "Mohammed", "Mohamed"], ["Aiden", "Aidan"],
    ["Jeffrey", "Geoffrey"], ["Madeline", "Madelyn", "Madeleine"], ["Kaylee", "Kailey", "Caylee"],
    ["Makayla", "Mikayla", "Michaela"], ["Jaylen", "Jalen"], ["Ashley", "Ashlee"],
    ["Allison", "Alison", "Allyson"], ["Nevaeh", "Neveah"], ["Jasmine", "Jazmine"],
    ["Brayden", "Braden"], ["Christina", "Kristina"], ["Natalie", "Nathalie"], ["Tiana", "Tianna"],
    ["Kiara", "Ciara"], ["Jordyn", "Jordan"], ["Ximena", "Jimena"],
    ["Cameron", "Kameron"], ["Kayden", "Caden"], ["Isaac", "Issac"], ["Nicolás", "Nicholas"],
    ["Matías", "Mathias"],
    ["Dakota", "Dakotah"], ["Leilani", "Lelani"], ["Yuna", "Yoona"], ["Ji-woo", "Jiwoo"],
    ["Min-jun", "Minjun"], ["Seo-yeon", "Seoyeon"], ["Khalil", "Kalil"], ["DeShawn", "Dashawn"],
    ["Marquis", "Markese"], ["Imani", "Amani"], ["Mya", "Maya", "Miah"], ["Amari", "Amare"],
    ["Tatiana", "Tatyana"], ["Jada", "Jayda"], ["Trinity", "Trinitee"],
    ["Valeria", "Valerie"], ["Yaretzi", "Yaretzy"], ["Itzel", "Itzell"], ["Nayeli", "Nayely"],
]

_STREET_WORDS = """Oak Maple Pine Cedar Elm Birch Walnut Chestnut Willow Aspen Spruce Hickory Magnolia Sycamore
    Poplar Laurel Juniper Cherry Dogwood Hawthorn Lake River Park Hill Valley Meadow Ridge Forest Spring Prairie
    Harbor Bay Mill Church School Market Water Bridge Union Liberty Franklin Jefferson Lincoln Madison Monroe
    Jackson Adams Grant Garfield Wilson Highland Fairview Lakeview Sunset Orchard Garden Grove Cherrywood
    Clover Summit Canal Depot Railroad Commerce Front Center Central Main Broad High Pleasant Green Prospect
    Locust Holly Ivy Magnolia Riverside Brookside Hillcrest Woodland Greenwood Kingsley Ashford Bradford"""
STREET_SUFFIX = ["St", "Ave", "Rd", "Blvd", "Ln", "Dr", "Ct", "Way", "Pl", "Ter"]
STREET_SUFFIX_LONG = ["Street", "Avenue", "Road", "Boulevard", "Lane", "Drive", "Court", "Way", "Place", "Terrace"]
STREET_SUFFIX_WEIGHTS = [0.3, 0.22, 0.1, 0.04, 0.07, 0.12, 0.05, 0.04, 0.03, 0.03]
DIRECTIONS = ["N", "S", "E", "W"]


def _split(text: str) -> list[str]:
    return [w.replace("_", " ") for w in text.split()]


def _unique(names: list[str]) -> list[str]:
    seen: dict[str, None] = {}
    for n in names:
        seen.setdefault(n, None)
    return list(seen)


def zipf_weights(n: int, s: float = 0.9, offset: float = 2.0) -> np.ndarray:
    """Rank-based weights: the first names in a table are the most frequent."""
    w = 1.0 / (np.arange(n) + offset) ** s
    return w / w.sum()


class NameTable:
    """Names with their sampling weights, drawn with a numpy Generator."""

    def __init__(self, names: list[str], s: float = 0.9) -> None:
        self.names = np.array(_unique(names), dtype=object)
        self.p = zipf_weights(len(self.names), s)

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.choice(self.names, size=n, p=self.p)


def _mixed(primary: dict[str, str], group: str) -> list[str]:
    # Small groups share a good part of the larger tables.
    if group == "AI":
        return _split(primary["AI"]) + _split(primary["WH"])[:25] + _split(primary["HI"])[:10]
    if group == "PI":
        return _split(primary["PI"]) + _split(primary["AS"])[:15] + _split(primary["WH"])[:15]
    return _split(primary[group])


BASE_GROUPS = ("HI", "AI", "AS", "BL", "PI", "WH")
CHILD_GIVEN = {
    (g, sex): NameTable(_mixed(table, g)) for g in BASE_GROUPS for sex, table in (("F", _CHILD_F), ("M", _CHILD_M))
}
ADULT_GIVEN = {
    (g, sex): NameTable(_mixed(table, g)) for g in BASE_GROUPS for sex, table in (("F", _ADULT_F), ("M", _ADULT_M))
}
MIDDLE = {"F": NameTable(_split(_MIDDLE_F), s=0.6), "M": NameTable(_split(_MIDDLE_M), s=0.6)}
SURNAMES = {g: NameTable(_mixed(_SURNAMES, g), s=0.8) for g in BASE_GROUPS}
STREET_WORDS = np.array(_unique(_split(_STREET_WORDS)), dtype=object)
