"""Generate the vocabulary of the narrative text cleaner (radbank.dicom.deid.clean).

Narrative free text (Image Comments, Additional Patient History, SR comments, ...) keeps
only words of this vocabulary; every other word is replaced. The vocabulary is:

1. every word of the code meanings of pydicom's SR concept dictionaries
   (`pydicom.sr._concepts_dict`: DCM, SNOMED CT, LOINC, RadLex, UCUM, ... as listed by
   DICOM PS3.16), except concepts that belong only to the veterinary context groups
   (CID 7480 Breed, 7481 Breed Registry, 7486 Mixed Breed, 7454 Animal Taxonomic Rank
   Value, 7490 Research Animal Source Registry), under any of their meanings: breed names
   are place names ("Jersey", "Hereford", "Devon") and registries are company and person
   names;
2. plus `CURATED_WORDS` and `FUNCTION_WORDS`: radiology, dosimetry and report words and
   common English function words that the concept dictionaries lack (topogram, recon,
   mbq, without, ...);
3. minus every word of `NAMES`, common given names and surnames (below), in their own
   spelling and without diacritics, and the particles of names (van, von, de, ...);
4. minus every word of two letters or fewer, unless it is in `SHORT_WORDS` (known
   abbreviations and function words: an initial must not survive as a "word").

Word pairs of the concept meanings in which one word was removed as a name and the other
is a content word of the vocabulary ("white matter", "anterior horn", "long axis"), and
`CURATED_PHRASES`, are kept as phrases: the name-like word survives only next to its
partner.

Source of `NAMES`, honestly: the English lists are the most frequent entries (the first
200 female and 200 male given names, the first 300 surnames) of the US Census Bureau's 1990
frequency lists, copied from the copy dicognito 0.19.0 ships (dicognito/pnanonymizer.py,
MIT); the German, French, Spanish, Italian, Dutch, Polish and Nordic lists were written from
the author's knowledge of the frequent names that national statistics offices publish
(Destatis and name studies, INSEE, INE, ISTAT, CBS/Meertens Instituut, GUS/PESEL, SSB, SCB,
Danmarks Statistik, Statistics Finland); they are not a copy of those publications, not
exhaustive and not ranked. About 1,600 names in all.

    python tools/make_clean_vocabulary.py [OUTPUT]

The output, src/radbank/dicom/deid/data/clean-vocabulary.json, is committed as package data.
"""

from __future__ import annotations

import json
import re
import sys
import unicodedata
from pathlib import Path

import pydicom
from pydicom.sr._concepts_dict import concepts

DEFAULT_OUTPUT = (
    Path(__file__).resolve().parent.parent / "src/radbank/dicom/deid/data/clean-vocabulary.json"
)
VETERINARY_CIDS = frozenset({7454, 7480, 7481, 7486, 7490})
# Words as the cleaner sees them: letters, with a possessive "'s" dropped.
_WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*")

CURATED_WORDS = """
    abdomen abdominal abdo abdpelvis abscess absent acquired acquisition activity acute
    adenopathy adjacent administered administration adrenal advised after again agent air
    aligned allergy allergic angio angiogram angiography ankle anterior aorta aortic apex
    appendix arm arterial artery artifact artifacts artefact artefacts ascites aspiration
    assessment asymmetric atelectasis attenuation auto automatic average axial axis
    background barium baseline before benign between bilateral biopsy bladder bleed bleeding
    bolus bone bones bowel brain breast breath breathing bronchial calcification calcified
    calcium calculus cancer cap cardiac carcinoma cardio care catheter caudal cavity cerebral
    cervical change changes chemo chemotherapy chest child cholangiography clinical colon
    collimation colonography comparison complete complication compression consistent
    contrast coronal coronary correction cranial cranio cta ctdi ctdivol ctpa cyst cystic
    decreased deep defect delayed density detector diagnosis diagnostic diameter diffuse
    dilated dilatation disease distal distribution dlp dose dosimetry dotatate dotatoc
    dual dynamic edema effusion elbow embolism embolus emergency energy enhanced enhancement
    enhancing enlarged entire equivocal evaluate evaluation evidence exam examination
    excluded exposure extremity fat femur fdg fibrosis fill filling findings fluid fluoro
    fluoroscopy focal follow followup foot fracture fractures free frontal function gallbladder
    gated gating gbq gland gold grade guided haematoma haemorrhage hand head heart helical
    hematoma hemorrhage hepatic hernia hilar hip history hounsfield hrct hypodense hypodensity
    ileus iliac image images imaging impression increased indication infection inferior
    inflammation inflammatory infusion injected injection injury inspiration internal
    interval intravenous iodinated iodine iohexol iomeprol iopamidol iopromide iodixanol
    ischaemia ischemia isotope iterative joint kernel kev kidney kidneys knee kvp lateral
    lesion lesions ligament limited liver lobe localiser localizer localised localized lower
    lumbar lung lungs lymph lymphadenopathy malignancy malignant mammo mammogram mammography
    margin mas mass masses maximum mbq mci measured measurement measurements mediastinal
    mediastinum medium metal metallic metastasis metastases metastatic mgy mgycm mild minimal
    minimum mip minip mmhg moderate modulation motion mpr msv multiphase multiple muscle
    native neck negative neoplasm nerve new nodal node nodes nodular nodule nodules noise
    non noncontrast normal nuclear obstruction occlusion old omnipaque opacity oral organ
    orbit orbits ovary pain palpable pancreas paediatric pediatric patient pelvic pelvis
    perfusion pericardial peripheral peritoneal persistent pet phantom phase phases pitch
    pleural pneumonia pneumothorax portal portovenous positive possible post posterior
    pre pregnancy pregnant preliminary previous primary prior probable procedure prone
    prostate protocol proximal psma pulmonary query radiation radiotherapy radiopharmaceutical
    rapid ratio reason recon reconstruction recurrence reduced reduction region regular
    renal repeat report residual resolution respiratory rest retroperitoneal rib ribs
    routine sagittal scan scanned scanogram scans scout screening sedation seen segment
    sequence sequences series severe shoulder sinus sinuses size skull slice slices small
    smooth soft spect spine spiral spleen stable staging standard stenosis stent stomach
    stress study subtraction suggest suggestive superior supine surgery surveillance surview
    suspected suspicion suspicious swelling syndrome technique therapy thickening thickness
    thoracic thorax thrombosis thrombus thyroid tissue topogram total trachea transverse
    trauma treatment tube tumor tumour ultrasound unchanged unenhanced upper ureter urgent
    urinary uterus vascular venous ventricle vertebra vertebral volume water weight weighted
    whole with within without wrist
    mdp hdp dtpa dmsa mibi sestamibi tetrofosmin maa hmpao ecd mibg pyp colloid
    pertechnetate exametazime choline fluciclovine florbetapir florbetaben flutemetamol
    fluorodeoxyglucose dotanoc pentetate lutetium yttrium technetium gallium thallium
    rul rml rll lul lll lingula ivc svc cbd lad rca lcx cabg copd ild picc aaa dvt hcc
    nsclc sclc crc tia cva ich sah sdh mca aca pca ica cca eca tbi mva mvc rta sob
    cxr kub ercp mrcp petct spectct cbct dwi adc flair stir swi tof dce dsa pci
    bmi egfr creatinine renal hba1c inr wbc
    fall falls fell found moved approved referred underwent received given shows showed
    demonstrates demonstrated reveals revealed weakness numbness confusion collapse
    man woman men women boy girl baby infant husband wife partner daughter mother father
    brother sister family relative carer caregiver home call bed ward clinic hospital
    years weeks months days hours minutes today yesterday morning evening night
""".split()  # noqa: SIM905 - word lists read as paragraphs

# Function words of English reports; kept as words, never as the partner of a phrase.
FUNCTION_WORDS = """
    about above across also and any are around because been before being below both but
    can could did does done during each either every few from further had has have here
    into itself less more most much must neither nor not now only other otherwise over
    per please same should since some such than that the their them then there these they
    this those through too under unless until upon very via was were what when where
    whether which while who will would yet she her hers him his they them their
""".split()  # noqa: SIM905 - word lists read as paragraphs

# Words that follow or precede a person's name in narrative ("Magnus left", "Frank leads",
# "West point"): never the partner of a phrase.
NOT_PARTNERS = frozenset({"left", "right", "present", "point", "lead", "leads", "body"})

# Phrases in which a name-like word is kept, besides those of the concept meanings.
CURATED_PHRASES = ("x ray", "white matter", "grey matter", "kidney stone", "short axis")

# Words of two letters or fewer that are kept: abbreviations of radiology, dosimetry and
# reports, unit symbols, and function words. Not initials, not name particles.
SHORT_WORDS = """
    a an as at be by he if in is no of on or re to up vs
    ap pa ll lr rl lt rt bi
    ct mr us nm pt dx cr mg xa rf sr
    iv im sc po pr
    kv ma ms mm cm ml kg gy sv bq hu mv ev
    fu hx rx tx sx ca pe gi gu ob er or
    ii iv vi
    dr mo wk yr yo wo nc
    tc ga lu tl xe kr rb sm sr ra cu zr ho re sn
    l r w x
""".split()  # noqa: SIM905 - word lists read as paragraphs

NAME_PARTICLES = """
    van von vom zu zum der den het ter ten de da di del della dos das du le la el al bin ibn
    mac mc
""".split()  # noqa: SIM905 - word lists read as paragraphs

NAMES = """
    Mary Patricia Linda Barbara Elizabeth Jennifer Maria Susan Margaret Dorothy Lisa Nancy Karen
    Betty Helen Sandra Donna Carol Ruth Sharon Michelle Laura Sarah Kimberly Deborah Jessica
    Shirley Cynthia Angela Melissa Brenda Amy Anna Rebecca Virginia Kathleen Pamela Martha Debra
    Amanda Stephanie Carolyn Christine Marie Janet Catherine Frances Ann Joyce Diane Alice Julie
    Heather Teresa Doris Gloria Evelyn Jean Cheryl Mildred Katherine Joan Ashley Judith Rose
    Janice Kelly Nicole Judy Christina Kathy Theresa Beverly Denise Tammy Irene Jane Lori Rachel
    Marilyn Andrea Kathryn Louise Sara Anne Jacqueline Wanda Bonnie Julia Ruby Lois Tina Phyllis
    Norma Paula Diana Annie Lillian Emily Robin Peggy Crystal Gladys Rita Dawn Connie Florence
    Tracy Edna Tiffany Carmen Rosa Cindy Grace Wendy Victoria Edith Kim Sherry Sylvia Josephine
    Thelma Shannon Sheila Ethel Ellen Elaine Marjorie Carrie Charlotte Monica Esther Pauline
    Emma Juanita Anita Rhonda Hazel Amber Eva Debbie April Leslie Clara Lucille Jamie Joanne
    Eleanor Valerie Danielle Megan Alicia Suzanne Michele Gail Bertha Darlene Veronica Jill Erin
    Geraldine Lauren Cathy Joann Lorraine Lynn Sally Regina Erica Beatrice Dolores Bernice
    Audrey Yvonne Annette June Samantha Marion Dana Stacy Ana Renee Ida Vivian Roberta Holly
    Brittany Melanie Loretta Yolanda Jeanette Laurie Katie Kristen Vanessa Alma Sue Elsie Beth
    Jeanne

    James John Robert Michael William David Richard Charles Joseph Thomas Christopher Daniel
    Paul Mark Donald George Kenneth Steven Edward Brian Ronald Anthony Kevin Jason Matthew Gary
    Timothy Jose Larry Jeffrey Frank Scott Eric Stephen Andrew Raymond Gregory Joshua Jerry
    Dennis Walter Patrick Peter Harold Douglas Henry Carl Arthur Ryan Roger Joe Juan Jack Albert
    Jonathan Justin Terry Gerald Keith Samuel Willie Ralph Lawrence Nicholas Roy Benjamin Bruce
    Brandon Adam Harry Fred Wayne Billy Steve Louis Jeremy Aaron Randy Howard Eugene Carlos
    Russell Bobby Victor Martin Ernest Phillip Todd Jesse Craig Alan Shawn Clarence Sean Philip
    Chris Johnny Earl Jimmy Antonio Danny Bryan Tony Luis Mike Stanley Leonard Nathan Dale
    Manuel Rodney Curtis Norman Allen Marvin Vincent Glenn Jeffery Travis Jeff Chad Jacob Lee
    Melvin Alfred Kyle Francis Bradley Jesus Herbert Frederick Ray Joel Edwin Don Eddie Ricky
    Troy Randall Barry Alexander Bernard Mario Leroy Francisco Marcus Micheal Theodore Clifford
    Miguel Oscar Jay Jim Tom Calvin Alex Jon Ronnie Bill Lloyd Tommy Leon Derek Warren Darrell
    Jerome Floyd Leo Alvin Tim Wesley Gordon Dean Greg Jorge Dustin Pedro Derrick Dan Lewis
    Zachary Corey Herman Maurice Vernon Roberto Clyde Glen Hector Shane Ricardo Sam Rick Lester
    Brent Ramon Charlie Tyler Gilbert Gene

    Smith Johnson Williams Jones Brown Davis Miller Wilson Moore Taylor Anderson Thomas Jackson
    White Harris Martin Thompson Garcia Martinez Robinson Clark Rodriguez Lewis Lee Walker Hall
    Allen Young Hernandez King Wright Lopez Hill Scott Green Adams Baker Gonzalez Nelson Carter
    Mitchell Perez Roberts Turner Phillips Campbell Parker Evans Edwards Collins Stewart Sanchez
    Morris Rogers Reed Cook Morgan Bell Murphy Bailey Rivera Cooper Richardson Cox Howard Ward
    Torres Peterson Gray Ramirez James Watson Brooks Kelly Sanders Price Bennett Wood Barnes
    Ross Henderson Coleman Jenkins Perry Powell Long Patterson Hughes Flores Washington Butler
    Simmons Foster Gonzales Bryant Alexander Russell Griffin Diaz Hayes Myers Ford Hamilton
    Graham Sullivan Wallace Woods Cole West Jordan Owens Reynolds Fisher Ellis Harrison Gibson
    Mcdonald Cruz Marshall Ortiz Gomez Murray Freeman Wells Webb Simpson Stevens Tucker Porter
    Hunter Hicks Crawford Henry Boyd Mason Morales Kennedy Warren Dixon Ramos Reyes Burns Gordon
    Shaw Holmes Rice Robertson Hunt Black Daniels Palmer Mills Nichols Grant Knight Ferguson
    Rose Stone Hawkins Dunn Perkins Hudson Spencer Gardner Stephens Payne Pierce Berry Matthews
    Arnold Wagner Willis Ray Watkins Olson Carroll Duncan Snyder Hart Cunningham Bradley Lane
    Andrews Ruiz Harper Fox Riley Armstrong Carpenter Weaver Greene Lawrence Elliott Chavez Sims
    Austin Peters Kelley Franklin Lawson Fields Gutierrez Ryan Schmidt Carr Vasquez Castillo
    Wheeler Chapman Oliver Montgomery Richards Williamson Johnston Banks Meyer Bishop Mccoy
    Howell Alvarez Morrison Hansen Fernandez Garza Harvey Little Burton Stanley Nguyen George
    Jacobs Reid Kim Fuller Lynch Dean Gilbert Garrett Romero Welch Larson Frazier Burke Hanson
    Day Mendoza Moreno Bowman Medina Fowler Brewer Hoffman Carlson Silva Pearson Holland Douglas
    Fleming Jensen Vargas Byrd Davidson Hopkins May Terry Herrera Wade Soto Walters Curtis Neal
    Caldwell Lowe Jennings Barnett Graves Jimenez Horton Shelton Barrett Obrien Castro Sutton
    Gregory Mckinney Lucas Miles Craig Rodriquez Chambers Holt Lambert Fletcher Watts Bates Hale
    Rhodes Pena Beck Newman
    O'Brien O'Connor O'Neill Murphy Walsh Byrne Ryan Kelly Doyle McCarthy Jones Davies Evans
    Thomas Roberts Hughes Lewis Morgan Griffiths Price Jenkins

    Müller Schmidt Schneider Fischer Weber Meyer Wagner Becker Schulz Hoffmann Schäfer Koch
    Bauer Richter Klein Wolf Schröder Neumann Schwarz Zimmermann Braun Krüger Hofmann Hartmann
    Lange Schmitt Werner Schmitz Krause Meier Lehmann Schmid Schulze Maier Köhler Herrmann
    König Walter Mayer Huber Kaiser Fuchs Peters Lang Scholz Möller Weiß Jung Hahn Schubert
    Vogel Friedrich Keller Günther Frank Berger Winkler Roth Beck Lorenz Baumann Franke
    Albrecht Schuster Simon Ludwig Böhm Winter Kraus Schumacher Krämer Vogt Stein Jäger Otto
    Sommer Groß Seidel Heinrich Brandt Haas Schreiber Graf Schulte Dietrich Ziegler Kuhn Kühn
    Pohl Engel Horn Busch Bergmann Voigt Sauer Wolff Pfeiffer
    Ursula Monika Petra Sabine Renate Helga Karin Brigitte Ingrid Erika Gisela Claudia
    Susanne Gabriele Christa Hildegard Birgit Stefanie Katharina Lena Leonie Hannah Mia
    Sophie Lea Johanna Klaus Wolfgang Andreas Jürgen Manfred Hans Stefan Uwe Christian Bernd
    Dieter Günter Horst Helmut Gerhard Heinz Rolf Jörg Markus Matthias Sebastian Tobias Lukas
    Jonas Felix Maximilian Ben Finn Niklas Jan Karl Ernst Kurt Fritz Ulrich Rainer Dirk Sven
    Torsten Holger

    Bernard Petit Durand Dubois Moreau Laurent Michel Lefebvre Leroy Roux Bertrand Morel
    Fournier Girard Bonnet Dupont Fontaine Rousseau Vincent Lefevre Faure Andre Mercier Blanc
    Guerin Boyer Garnier Chevalier Francois Legrand Gauthier Perrin Clement Morin Nicolas
    Roussel Mathieu Gautier Masson Marchand Duval Denis Dumont Lemaire Noel Dufour Meunier
    Brun Blanchard Giraud Joly Riviere Brunet Gaillard Barbier Arnaud Gerard Roche Renard
    Roy Leroux Colin Vidal Caron Picard Roger Fabre Aubert Lemoine Renaud Dumas Lacroix
    Olivier Philippe Bourgeois Pierre Benoit Leclerc Guillaume Lecomte Dupuy Hubert Dupuis
    Moulin Paris
    Jeanne Françoise Monique Nathalie Isabelle Sylvie Martine Camille Léa Manon Chloé Inès
    Jade Céline Sandrine Valérie Stéphanie Aurélie Alain Christophe Éric Frédéric Stéphane
    Pascal Thierry Julien Sébastien Hugo Gabriel Jules Léo Raphaël Antoine Maxime Romain
    Jacques Henri

    García González Rodríguez Fernández López Martínez Sánchez Pérez Gómez Jiménez Ruiz
    Hernández Díaz Moreno Muñoz Álvarez Romero Alonso Gutiérrez Navarro Torres Domínguez
    Vázquez Ramos Gil Ramírez Serrano Blanco Molina Morales Suárez Ortega Delgado Castro Ortiz
    Rubio Marín Sanz Núñez Iglesias Medina Garrido Cortés Castillo Santos Lozano Guerrero Cano
    Prieto Méndez Calvo Gallego León Márquez Herrera Peña Flores Cabrera Campos Vega Fuentes
    Carrasco Diez Caballero Reyes Nieto Aguilar Pascual Santana Herrero Lorenzo Montero
    Hidalgo Giménez Ibáñez Ferrer Durán Santiago Benítez Mora Vicente Vargas Arias Carmona
    Crespo Román Pastor Soto Sáez Velasco Moya Soler Parra Esteban Bravo Gallardo Rojas
    María Josefa Dolores Pilar Lucía Mercedes Francisca Elena Raquel Manuela Rosario Juana
    Concepción Beatriz Silvia Encarnación Alba Sofía José Javier Jesús Alejandro Rafael Pablo
    Ángel Sergio Fernando Alberto Álvaro Adrián Diego Raúl Enrique Iván Rubén Óscar Andrés
    Joaquín Eduardo Víctor Jaime Ignacio Alfonso Salvador Marcos Jordi Emilio Guillermo
    Gonzalo Mateo

    Rossi Russo Ferrari Esposito Bianchi Romano Colombo Ricci Marino Greco Bruno Gallo Conti
    Luca Mancini Costa Giordano Rizzo Lombardi Moretti Barbieri Fontana Santoro Mariani
    Rinaldi Caruso Ferrara Galli Martini Leone Longo Gentile Martinelli Vitale Lombardo Serra
    Coppola Santis Angelo Marchetti Parisi Villa Conte Ferraro Ferri Fabbri Bianco Marini
    Grasso Valentini Messina Sala Angelis Gatti Pellegrini Palumbo Sanna Farina Rizzi Monti
    Cattaneo Morelli Amato Silvestri Mazza Testa Grassi Pellegrino Carbone Giuliani Benedetti
    Barone Rossetti Caputo Montanari Guerra Palmieri Bernardi Martino Fiore Ferretti Bellini
    Basile Riva Donati Piras Vitali Battaglia Sartori Neri Costantini Milani Pagano Ruggiero
    Sorrentino Amico Orlando Negri
    Giuseppina Giovanna Lucia Carmela Caterina Francesca Antonietta Carla Concetta Margherita
    Franca Paola Giulia Aurora Ginevra Giorgia Martina Chiara Valentina Federica Giuseppe
    Giovanni Luigi Francesco Vincenzo Pietro Salvatore Carlo Franco Domenico Paolo Michele
    Giorgio Aldo Luciano Marco Alessandro Stefano Matteo Lorenzo Leonardo Riccardo Davide
    Simone Federico Gabriele Tommaso Edoardo Alessio Fabio Massimo Enrico

    Jong Jansen Vries Berg Dijk Bakker Janssen Visser Smit Meijer Boer Mulder Groot Bos Vos
    Hendriks Leeuwen Dekker Brouwer Wit Dijkstra Smits Graaf Meer Linden Kok Haan Vermeulen
    Heuvel Veen Broek Bruijn Bruin Heijden Schouten Beek Willems Vliet Hoekstra Maas
    Verhoeven Koster Dam Wal Prins Blom Huisman Peeters Jonge Kuipers Wijk Postma Kuiper
    Veenstra Kramer Brink Scholten
    Johanna Cornelia Wilhelmina Hendrika Tess Sanne Anouk Fleur Lotte Femke Iris Daan Sem
    Levi Luuk Milan Bram Thijs Johannes Hendrik Cornelis Willem Gerrit Pieter Jacobus Kees
    Henk Wim Joost Bas Sander Ruud Maarten Koen Jeroen Arjen Geert

    Nowak Kowalski Wiśniewski Wójcik Kowalczyk Kamiński Lewandowski Zieliński Szymański
    Woźniak Dąbrowski Kozłowski Jankowski Mazur Wojciechowski Kwiatkowski Krawczyk Kaczmarek
    Piotrowski Grabowski Zając Pawłowski Michalski Król Wieczorek Jabłoński Wróbel
    Nowakowski Majewski Olszewski Stępień Malinowski Jaworski Adamczyk Dudek Nowicki Pawlak
    Górski Witkowski Walczak Sikora Baran Rutkowski Michalak Szewczyk Ostrowski Tomaszewski
    Pietrzak Zalewski Wróblewski Kowalska Wiśniewska Kamińska Lewandowska Zielińska
    Szymańska Dąbrowska Kozłowska Jankowska Wojciechowska Kwiatkowska
    Katarzyna Małgorzata Agnieszka Krystyna Elżbieta Zofia Joanna Magdalena Danuta Aleksandra
    Natalia Marta Beata Dorota Jadwiga Halina Irena Janina Piotr Krzysztof Andrzej Tomasz
    Paweł Michał Marcin Stanisław Jakub Marek Łukasz Grzegorz Mateusz Wojciech Mariusz
    Dariusz Zbigniew Jerzy Maciej Rafał Kamil Józef Tadeusz Kazimierz Henryk Ryszard Bartosz
    Szymon Antoni Filip Kacper

    Johansen Olsen Larsen Andersen Pedersen Nilsen Kristiansen Karlsen Johnsen Pettersen
    Eriksen Haugen Hagen Johannessen Andreassen Jacobsen Dahl Jørgensen Halvorsen Henriksen
    Lund Sørensen Nielsen Christensen Rasmussen Petersen Madsen Kristensen Thomsen Poulsen
    Johansson Andersson Karlsson Nilsson Eriksson Larsson Olsson Persson Svensson Gustafsson
    Pettersson Jonsson Jansson Hansson Bengtsson Jönsson Lindberg Jakobsson Magnusson
    Lindström Olofsson Lindqvist Lindgren Axelsson Bergström Lundberg Lind Lundgren Lundqvist
    Mattsson Berglund Fredriksson Sandberg Henriksson Korhonen Virtanen Mäkinen Nieminen
    Mäkelä Hämäläinen Laine Heikkinen Koskinen Järvinen Lehtonen Lehtinen Saarinen Salminen
    Heinonen Niemi Heikkilä Kinnunen Salonen Turunen Salo Laitinen Tuominen Rantanen
    Karjalainen Jokinen Mattila Savolainen Lahtinen Ahonen Jónsson Sigurðsson Guðmundsson
    Holm Strand
    Kristin Ingrid Marit Liv Kari Hanne Inger Astrid Sigrid Solveig Elin Nora Maja Ella
    Freja Ebba Elsa Saga Linnea Agnes Wilma Ole Lars Bjørn Knut Arne Kjell Svein Erik
    Anders Johan Nils Lennart Gunnar Mikael Magnus Henrik Jens Søren Niels Mads Rasmus Oskar
    Liam Noah Elias Axel Matti Juha Timo Mikko Jari Pekka Antti Jukka Heikki Sanna Tuula
    Päivi Minna Leena Aino Helmi Eino Väinö Jón Sigurður Guðrún
""".split()  # noqa: SIM905 - word lists read as paragraphs


def _fold(word: str) -> str:
    """The word without diacritics ("müller" -> "muller", "jørgensen" -> "jorgensen")."""
    decomposed = unicodedata.normalize("NFKD", word.replace("ø", "o").replace("ł", "l"))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).replace("ß", "ss")


def words_of(text: str) -> list[str]:
    """The words of a text as the cleaner reads them: lower case, "'s" dropped."""
    words = []
    for match in _WORD.finditer(text.lower()):
        word = match[0].replace("’", "'")
        words.append(word[:-2] if word.endswith("'s") else word)
    return words


def concept_meanings() -> list[str]:
    """Every code meaning, except those of codes in a veterinary context group (a code can
    have several meanings, "Brown Swiss cow breed" and "Brown Swiss cattle breed")."""
    entries = [
        (scheme, code, meaning, cids)
        for scheme, by_name in concepts.items()
        for codes in by_name.values()
        for code, (meaning, cids) in codes.items()
    ]
    veterinary = {
        (scheme, code)
        for scheme, code, _, cids in entries
        if cids and VETERINARY_CIDS.issuperset(cids)
    }
    return [meaning for scheme, code, meaning, _ in entries if (scheme, code) not in veterinary]


def name_words() -> set[str]:
    names = {word for name in NAMES for word in words_of(name)} | set(NAME_PARTICLES)
    return names | {_fold(name) for name in names}


def build() -> dict[str, object]:
    meanings = concept_meanings()
    concept_words = {word for meaning in meanings for word in words_of(meaning)}
    names = name_words()
    short = set(SHORT_WORDS)
    candidates = concept_words | set(CURATED_WORDS) | set(FUNCTION_WORDS)
    vocabulary = {
        word for word in candidates if word not in names and (len(word) > 2 or word in short)
    } | short
    # The partner of a name-like word must be a content word: "of Day" is no phrase.
    partners = vocabulary - short - set(FUNCTION_WORDS) - NOT_PARTNERS
    phrasal = names - set(NAME_PARTICLES)
    phrases = set(CURATED_PHRASES)
    for meaning in meanings:
        words = words_of(meaning)
        for first, second in zip(words, words[1:], strict=False):
            if (first in phrasal and len(second) > 3 and second in partners) or (
                second in phrasal and len(first) > 3 and first in partners
            ):
                phrases.add(f"{first} {second}")
    return {
        "pydicom": pydicom.__version__,
        "source": (
            f"code meanings of pydicom {pydicom.__version__} SR concept dictionaries "
            "(veterinary context groups excluded) + curated radiology and dosimetry words, "
            "minus common given names and surnames; tools/make_clean_vocabulary.py"
        ),
        "concept_words": len(concept_words),
        "curated_words": len(set(CURATED_WORDS) | set(FUNCTION_WORDS)),
        "names_removed": sorted(candidates & names),
        "words": sorted(vocabulary),
        "phrases": sorted(phrases),
    }


def main() -> None:
    output = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUTPUT
    data = build()
    output.write_text(json.dumps(data, ensure_ascii=False, indent=0) + "\n", "utf-8")
    print(
        f"{output}: {len(data['words'])} words, {len(data['phrases'])} phrases, "
        f"{len(data['names_removed'])} name words removed"
    )


if __name__ == "__main__":
    main()
