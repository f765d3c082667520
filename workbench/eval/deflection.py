"""Generic deflection phrasing in the 15 customer languages.

Three kinds, matched on normalised text (see ``textnorm.normalize``) so case, full-width forms
and curly apostrophes do not matter:

- ``redirect``: "please contact customer service" instead of an answer;
- ``refusal``: "I can't help with that";
- ``ai``: "as an AI / language model".

Refusals are phrased as "can't *help/answer*", never "can't" alone: a correct policy answer
says "this item cannot be returned", which is not a deflection.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from workbench.eval.textnorm import normalize

# lang -> kind -> regexes (lower case; Unicode composed forms).
PATTERNS: dict[str, dict[str, list[str]]] = {
    "en": {
        "redirect": [r"\b(contact|reach out to|get in touch with|call|email) (our |the )?"
                     r"(customer (service|support|care)|support team|help ?desk)"],
        "refusal": [r"\bi(?:'m| am) (sorry,? (but )?)?(unable|not able) to (help|assist|answer)",
                    r"\bi (can ?not|can't) (help|assist) (you )?with", r"\bi can't answer"],
        "ai": [r"\bas an ai\b", r"\bas a language model", r"\bi(?:'m| am) (just )?an? (ai|language model)\b"],
    },
    "zh": {
        "redirect": [r"(联系|聯繫|联络|致电|咨询)(我们的)?(客服|客户服务|人工客服|售后)"],
        "refusal": [r"(无法|不能)(为您|帮您|帮助您|协助您|回答您的问题|回答这个问题)"],
        "ai": [r"作为(一个|一名)?(人工智能|ai|语言模型)", r"我(只)?是(一个)?(人工智能|ai|语言模型)"],
    },
    "es": {
        "redirect": [r"(contacte|contacta|comuníquese|comunícate|póngase en contacto|ponte en contacto)"
                     r"( con)? (nuestro |el |nuestra )?(servicio de atención al cliente|atención al cliente|"
                     r"servicio al cliente|soporte|equipo de soporte)"],
        "refusal": [r"no (puedo|podemos) (ayudar|ayudarle|ayudarte|responder)"],
        "ai": [r"como (una |un )?(ia|inteligencia artificial|modelo de lenguaje)\b",
               r"soy (una |un )?(ia|inteligencia artificial|modelo de lenguaje)\b"],
    },
    "ar": {
        "redirect": [r"(تواصل|اتصل|التواصل|الاتصال)( مع| ب)? ?(خدمة العملاء|فريق الدعم|الدعم الفني)"],
        "refusal": [r"لا (أستطيع|استطيع|يمكنني) (مساعدتك|المساعدة|الإجابة)"],
        "ai": [r"(بصفتي|كوني) (ذكاء|نموذج)", r"(أنا|انا) (مجرد )?(ذكاء اصطناعي|نموذج لغوي)"],
    },
    "fr": {
        "redirect": [r"(contactez|contacter|contacte|adressez-vous à|joindre) (notre |le |votre )?"
                     r"(service client|service clientèle|support|assistance)"],
        "refusal": [r"je ne (peux|suis) pas (en mesure de )?(vous )?(aider|répondre)"],
        "ai": [r"en tant qu'(ia|intelligence artificielle|assistant virtuel|modèle de langage)",
               r"je suis une? (ia|intelligence artificielle|modèle de langage)\b"],
    },
    "de": {
        "redirect": [r"(wenden sie sich an|kontaktieren sie|kontaktiere|wende dich an) "
                     r"(unseren |den |unser |das )?(kundenservice|kundendienst|support|service-team)"],
        "refusal": [r"(ich kann|kann ich) (ihnen |dir |dabei )*(leider )?(nicht|keine auskunft) "
                    r"(helfen|weiterhelfen|beantworten|geben)"],
        "ai": [r"\bals (eine )?(ki|künstliche intelligenz|sprachmodell)\b",
               r"\bich bin (eine? |nur eine? )?(ki|künstliche intelligenz|sprachmodell)\b"],
    },
    "pt": {
        "redirect": [r"(entre em contato|entre em contacto|contate|contacte|fale)( com)? ((o|a|nosso|nossa) )*"
                     r"(atendimento ao cliente|serviço de apoio ao cliente|suporte|serviço ao cliente|sac)\b"],
        "refusal": [r"não (posso|consigo) (ajudar|ajudá-lo|ajudá-la|responder)"],
        # Not a bare "como ia": "ia" is also a verb ("como ia dizendo").
        "ai": [r"como (uma |um )?(inteligência artificial|modelo de linguagem|assistente virtual)\b",
               r"sou (uma |um )(ia|inteligência artificial|modelo de linguagem)\b"],
    },
    "ru": {
        "redirect": [r"(обратитесь|свяжитесь|позвоните|напишите)[^.!?]{0,30}(поддержк|служб[уыейо] "
                     r"(клиент|поддерж))"],
        "refusal": [r"не могу (вам )?(помочь|ответить)"],
        "ai": [r"как (ии|искусственный интеллект|языковая модель)\b",
               r"я (всего лишь |лишь |просто )?(ии|искусственный интеллект|языковая модель)\b"],
    },
    "ja": {
        "redirect": [r"(カスタマーサービス|カスタマーサポート|サポート窓口|お客様窓口|お客様相談窓口|"
                     r"サポートセンター|サポートチーム)(に|へ|まで)(お問い合わせ|お問合せ|ご連絡|連絡)"],
        "refusal": [r"(お手伝い|お答え|回答|ご案内)(することが|は|が)?でき(ません|かねます)"],
        "ai": [r"(ai|人工知能|言語モデル)(として|なので|のため)", r"私は(ai|人工知能|言語モデル)"],
    },
    "ko": {
        "redirect": [r"(고객 ?센터|고객 ?서비스|고객 ?지원팀|상담원)(에|으로|에게|로)? ?(문의|연락)"],
        "refusal": [r"(도와 ?드릴|답변(해)? ?드릴|도움을 드릴) 수 없"],
        "ai": [r"(ai|인공지능|언어 ?모델)(로서|이기 때문에|라서)", r"저는 (ai|인공지능|언어 ?모델)"],
    },
    "it": {
        "redirect": [r"(contatta|contattare|contatti|rivolgiti|si rivolga|rivolgersi)( al| il| a| l')? ?"
                     r"(nostro )?(servizio clienti|assistenza clienti|supporto|assistenza)"],
        "refusal": [r"non (posso|sono in grado di) (aiutarti|aiutarla|aiutare|rispondere)"],
        "ai": [r"in quanto (ia|intelligenza artificiale|modello linguistico)\b",
               r"come (un'|una |un )?(ia|intelligenza artificiale|modello linguistico)\b",
               r"sono (un'|una |un )?(ia|intelligenza artificiale|modello linguistico)\b"],
    },
    "tr": {
        "redirect": [r"(müşteri hizmetleri|destek ekibi)\w*( ile)? (iletişime geç|ulaş|başvur)"],
        "refusal": [r"yardımcı olam(am|ıyorum|ayacağım)", r"(cevap|yanıt) veremem"],
        "ai": [r"(yapay zeka|dil modeli)( modeli)? olarak", r"ben (bir )?(yapay zeka|dil modeli)"],
    },
    "id": {
        "redirect": [r"(hubungi|menghubungi) (layanan pelanggan|customer service|tim dukungan|tim layanan)"],
        "refusal": [r"tidak (dapat|bisa) (membantu|menjawab)"],
        "ai": [r"sebagai (sebuah )?(ai|kecerdasan buatan|model bahasa)\b",
               r"saya (adalah )?(hanya )?(sebuah )?(ai|kecerdasan buatan|model bahasa)\b"],
    },
    "vi": {
        "redirect": [r"liên (hệ|lạc)( với)? [^.!?]{0,20}(chăm sóc khách hàng|dịch vụ khách hàng|"
                     r"bộ phận hỗ trợ|tổng đài)"],
        "refusal": [r"không thể (giúp|hỗ trợ|trả lời)"],
        # Not a bare "là ai": in Vietnamese that is "who is".
        "ai": [r"là (một )?(trí tuệ nhân tạo|mô hình ngôn ngữ|trợ lý ai)\b",
               r"với tư cách (là )?(một )?(ai|trí tuệ nhân tạo|mô hình ngôn ngữ)\b"],
    },
    "th": {
        "redirect": [r"ติดต่อ ?(ฝ่ายบริการลูกค้า|ฝ่ายลูกค้าสัมพันธ์|ศูนย์บริการลูกค้า|บริการลูกค้า|"
                     r"คอลเซ็นเตอร์|เจ้าหน้าที่)"],
        "refusal": [r"ไม่สามารถ(ช่วย|ให้ความช่วยเหลือ|ตอบ)"],
        "ai": [r"ในฐานะ(ที่เป็น)? ?(ai|ปัญญาประดิษฐ์|โมเดลภาษา)", r"(ผม|ฉัน|ดิฉัน)เป็น(เพียง)? ?(ai|ปัญญาประดิษฐ์|โมเดลภาษา)"],
    },
}


@dataclass(frozen=True)
class Deflection:
    """The first deflecting phrase found in an answer."""

    # "redirect", "refusal" or "ai".
    kind: str
    # Language whose phrase list matched.
    lang: str
    # The matched text (normalised).
    phrase: str


@lru_cache(maxsize=1)
def _compiled() -> list[tuple[str, str, re.Pattern]]:
    # NFKC like the answers, so a pattern typed in decomposed form still matches.
    return [(lang, kind, re.compile(unicodedata.normalize("NFKC", p)))
            for lang, kinds in PATTERNS.items() for kind, pats in kinds.items() for p in pats]


def find_deflections(text: str) -> list[Deflection]:
    """Every deflecting phrase of any language in ``text`` (answers may be in the wrong one)."""
    norm = normalize(text)
    return [Deflection(kind, lang, m.group(0)) for lang, kind, pat in _compiled()
            if (m := pat.search(norm))]
