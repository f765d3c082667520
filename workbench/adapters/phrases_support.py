"""FAQ questions and short grounded answers in the 15 languages (support training data).

One line per FAQ entry id: ``id: question | question => answer``. Answers repeat the FAQ's
numbers and names exactly (the eval checks them) in at most two short sentences.
"""
from __future__ import annotations

_RAW: dict[str, str] = {
    "en": """
shipping_standard: How many days does normal delivery take after dispatch? => Standard shipping takes 7-12 business days from dispatch, and we dispatch within 1 business day of payment.
shipping_express: Is express delivery available, and how fast is it? => Yes, express shipping takes 3-5 business days from dispatch and costs a flat 14.90 USD or 14.90 EUR.
free_shipping: From what order value is delivery free? => Standard shipping is free on orders over 49 USD or 49 EUR; below that it costs 5.90 USD or 5.90 EUR.
customs_duties: Are import taxes included for orders to Australia? => Yes, orders to the EU, GB, the US and AU are shipped DDP, so duties are included and nothing more is due. For other countries you pay duties on delivery.
tracking_number: When will I receive the tracking code for my parcel? => We email your tracking number within 24 hours of dispatch; the first carrier scan can take up to 48 hours to appear.
damaged_parcel: The box came crushed and the item is broken, what now? => Please report it within 48 hours of delivery with photos of the parcel and the item. We will send a free replacement or refund you in full.
payment_methods: Which ways of paying do you take? => We accept Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay and Alipay, charged in USD or EUR.
payment_failed: The payment did not go through but my bank shows a charge, is that normal? => When a payment fails no order is created, and the amount on hold is released automatically within 5 days. You can try again with the same card or another method.
change_address: Is it still possible to edit the shipping address? => You can change the address within 2 hours of ordering by live chat or email with your order number. After 2 hours the order is being packed and it can no longer be changed.
cancel_order: How do I cancel a purchase I just made? => You can cancel free of charge within 2 hours of ordering from My Orders. After that you can return it after delivery.
returns_refunds: How does a return work and where does the refund go? => Start the return from My Orders. We inspect returned items within 3 business days of arrival and refund to the original payment method.
support_hours: At what times can I chat with an agent? => Live chat and email support are open Monday to Saturday, 08:00-20:00 UTC.
""",
    "zh": """
shipping_standard: 发货后普通快递要几天才能到？ => 标准配送自发货起需要7-12个工作日，付款后1个工作日内发货。
shipping_express: 有快递加急服务吗？多快能到？ => 有，加急配送自发货起3-5个工作日送达，统一收费14.90 USD或14.90 EUR。
free_shipping: 订单满多少钱包邮？ => 订单满49 USD或49 EUR（折后）即可免标准运费，不满则收5.90 USD或5.90 EUR。
customs_duties: 寄到中国需要自己付关税吗？ => 需要。寄往EU、GB、US和AU的订单已含税，其他国家的关税和进口税由您在收货时支付。
tracking_number: 什么时候能收到物流单号？ => 发货后24小时内我们会通过邮件发送物流单号，首次物流扫描最多可能需要48小时才显示。
damaged_parcel: 包裹到的时候破了，东西也坏了，怎么办？ => 请在签收后48小时内附上包裹和商品的照片联系我们，我们会免费补发或全额退款。
payment_methods: 你们支持哪些付款方式？ => 我们支持Visa、Mastercard、American Express、PayPal、Apple Pay、Google Pay和Alipay，以USD或EUR结算。
payment_failed: 付款失败了但是卡里被扣了钱，怎么回事？ => 付款失败时不会生成订单，银行冻结的金额会在5天内自动释放。您可以用同一张卡或其他方式重新付款。
change_address: 下单后还能改收货地址吗？ => 下单后2小时内可以通过在线客服或邮件提供订单号修改地址，超过2小时订单已在打包，无法修改。
cancel_order: 刚下的单怎么取消？ => 下单后2小时内可在My Orders中免费取消，之后只能在收货后按退货政策退回。
returns_refunds: 退货流程是怎样的？钱退到哪里？ => 请在My Orders中发起退货，仓库收到后3个工作日内验货，并原路退款。
support_hours: 客服几点在线？ => 在线客服和邮件支持时间为周一至周六 08:00-20:00 UTC。
""",
    "es": """
shipping_standard: ¿Cuántos días tarda un envío normal desde que sale? => El envío estándar tarda 7-12 días hábiles desde el despacho, y despachamos en 1 día hábil tras el pago.
shipping_express: ¿Tenéis envío urgente y cuánto tarda? => Sí, el envío exprés tarda 3-5 días hábiles desde el despacho y cuesta 14.90 USD o 14.90 EUR.
free_shipping: ¿A partir de qué importe el envío sale gratis? => El envío estándar es gratis en pedidos de más de 49 USD o 49 EUR; por debajo cuesta 5.90 USD o 5.90 EUR.
customs_duties: ¿Tendré que pagar aduana si vivo en México? => Sí. Solo los pedidos a la EU, GB, US y AU llevan los impuestos incluidos; en otros países los aranceles se pagan al recibir el pedido.
tracking_number: ¿Cuándo me mandáis el número de seguimiento? => Enviamos el número de seguimiento por email en las 24 horas siguientes al despacho; el primer escaneo puede tardar hasta 48 horas.
damaged_parcel: El paquete llegó aplastado y el producto está roto, ¿qué hago? => Avísenos en las 48 horas siguientes a la entrega con fotos del paquete y del producto. Le enviamos un reemplazo gratis o le devolvemos todo el importe.
payment_methods: ¿Qué formas de pago aceptáis? => Aceptamos Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay y Alipay, con cobro en USD o EUR.
payment_failed: El pago falló pero me han retenido el dinero, ¿qué pasa? => Si el pago falla no se crea ningún pedido y la retención se libera automáticamente en 5 días. Puede intentarlo de nuevo con la misma tarjeta u otro método.
change_address: ¿Aún puedo modificar la dirección de entrega? => Puede cambiarla en las 2 horas siguientes al pedido por chat o email con su número de pedido. Pasadas 2 horas ya no se puede cambiar.
cancel_order: ¿Cómo anulo un pedido que acabo de hacer? => Puede cancelarlo gratis en las 2 horas siguientes desde My Orders. Después podrá devolverlo tras la entrega.
returns_refunds: ¿Cómo funciona una devolución y dónde recibo el dinero? => Inicie la devolución en My Orders. Revisamos el artículo en 3 días hábiles tras su llegada y reembolsamos al método de pago original.
support_hours: ¿En qué horario puedo hablar con un agente? => El chat y el soporte por email atienden de lunes a sábado, de 08:00 a 20:00 UTC.
""",
    "ar": """
shipping_standard: كم يومًا يستغرق الشحن العادي بعد الإرسال؟ => يستغرق الشحن العادي 7-12 يوم عمل من تاريخ الإرسال، ونرسل الطلب خلال 1 يوم عمل من الدفع.
shipping_express: هل يوجد شحن سريع وكم يستغرق؟ => نعم، يستغرق الشحن السريع 3-5 أيام عمل من الإرسال وتكلفته ثابتة 14.90 USD أو 14.90 EUR.
free_shipping: من أي مبلغ يصبح الشحن مجانيًا؟ => الشحن العادي مجاني للطلبات التي تزيد على 49 USD أو 49 EUR، وإلا فتكلفته 5.90 USD أو 5.90 EUR.
customs_duties: هل سأدفع رسومًا جمركية على طلب إلى السعودية؟ => نعم، الرسوم مشمولة فقط في الطلبات إلى EU وGB وUS وAU، أما في الدول الأخرى فيدفع العميل الرسوم عند التسليم.
tracking_number: متى يصلني رقم التتبع؟ => نرسل رقم التتبع بالبريد الإلكتروني خلال 24 ساعة من الإرسال، وقد يستغرق ظهور أول مسح حتى 48 ساعة.
damaged_parcel: وصل الطرد مهشمًا والمنتج مكسور، ماذا أفعل؟ => أبلغنا خلال 48 ساعة من التسليم مع صور للطرد والمنتج، وسنرسل بديلًا مجانيًا أو نرد المبلغ كاملًا.
payment_methods: ما طرق الدفع المتاحة لديكم؟ => نقبل Visa وMastercard وAmerican Express وPayPal وApple Pay وGoogle Pay وAlipay، ويتم الدفع بـ USD أو EUR.
payment_failed: فشل الدفع لكن المبلغ محجوز في حسابي، لماذا؟ => عند فشل الدفع لا يُنشأ أي طلب، ويُفرج عن المبلغ المحجوز تلقائيًا خلال 5 أيام. يمكنك المحاولة مجددًا بالبطاقة نفسها أو بطريقة أخرى.
change_address: هل يمكنني تعديل عنوان التوصيل الآن؟ => يمكنك تغيير العنوان خلال ساعتين (2) من الطلب عبر الدردشة أو البريد مع رقم الطلب، وبعد 2 ساعة لا يمكن تغييره.
cancel_order: كيف ألغي طلبًا قمت به للتو؟ => يمكنك الإلغاء مجانًا خلال 2 ساعة من الطلب من My Orders، وبعدها يمكنك الإرجاع بعد التسليم.
returns_refunds: كيف يتم الإرجاع وإلى أين يعود المبلغ؟ => ابدأ الإرجاع من My Orders، نفحص المنتج خلال 3 أيام عمل من وصوله ونعيد المبلغ إلى وسيلة الدفع الأصلية.
support_hours: في أي ساعات يمكنني التحدث مع موظف؟ => الدردشة والدعم بالبريد متاحان من الاثنين إلى السبت، 08:00-20:00 UTC.
""",
    "fr": """
shipping_standard: Combien de jours met un envoi normal une fois parti ? => La livraison standard prend 7-12 jours ouvrables après l'expédition, et nous expédions sous 1 jour ouvrable après le paiement.
shipping_express: Proposez-vous un envoi rapide et en combien de temps ? => Oui, la livraison express prend 3-5 jours ouvrables après l'expédition et coûte 14.90 USD ou 14.90 EUR.
free_shipping: À partir de quel montant la livraison est-elle gratuite ? => La livraison standard est gratuite au-dessus de 49 USD ou 49 EUR ; en dessous, elle coûte 5.90 USD ou 5.90 EUR.
customs_duties: Y aura-t-il des droits de douane pour une livraison en France ? => Non, les commandes vers l'EU, GB, US et AU sont livrées DDP : les taxes sont incluses et rien n'est dû à la livraison.
tracking_number: Quand vais-je recevoir mon numéro de suivi ? => Nous envoyons le numéro de suivi par e-mail dans les 24 heures après l'expédition ; le premier scan peut mettre jusqu'à 48 heures.
damaged_parcel: Mon article est arrivé cassé dans un carton écrasé, que faire ? => Signalez-le dans les 48 heures après la livraison avec des photos du colis et de l'article. Nous envoyons un remplacement gratuit ou remboursons intégralement.
payment_methods: Quels moyens de paiement acceptez-vous ? => Nous acceptons Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay et Alipay, en USD ou en EUR.
payment_failed: Mon paiement a échoué mais ma banque a débité la somme, pourquoi ? => Quand un paiement échoue, aucune commande n'est créée et le montant bloqué est libéré automatiquement sous 5 jours. Vous pouvez réessayer avec la même carte ou un autre moyen.
change_address: Puis-je encore modifier l'adresse de livraison ? => Vous pouvez la modifier dans les 2 heures suivant la commande par chat ou e-mail avec votre numéro de commande. Après 2 heures, ce n'est plus possible.
cancel_order: Comment annuler une commande passée à l'instant ? => Vous pouvez l'annuler gratuitement dans les 2 heures depuis My Orders. Ensuite, vous pourrez la retourner après la livraison.
returns_refunds: Comment se passe un retour et où arrive le remboursement ? => Lancez le retour depuis My Orders. Nous vérifions l'article sous 3 jours ouvrables après réception et remboursons sur le moyen de paiement d'origine.
support_hours: À quelles heures puis-je joindre un conseiller ? => Le chat et le support par e-mail sont ouverts du lundi au samedi, de 08:00 à 20:00 UTC.
""",
    "de": """
shipping_standard: Wie viele Tage dauert der normale Versand nach dem Versandtag? => Der Standardversand dauert 7-12 Werktage ab Versand, und wir versenden innerhalb von 1 Werktag nach Zahlung.
shipping_express: Gibt es einen Schnellversand und wie schnell ist er? => Ja, der Expressversand dauert 3-5 Werktage ab Versand und kostet pauschal 14.90 USD oder 14.90 EUR.
free_shipping: Ab welchem Bestellwert ist der Versand kostenlos? => Der Standardversand ist ab 49 USD oder 49 EUR kostenlos; darunter kostet er 5.90 USD oder 5.90 EUR.
customs_duties: Muss ich für eine Lieferung in die Schweiz Zoll zahlen? => Ja. Nur Bestellungen in die EU, nach GB, in die US und nach AU sind verzollt; in allen anderen Ländern zahlen Sie Zoll und Einfuhrsteuer bei der Zustellung.
tracking_number: Wann bekomme ich die Sendungsnummer? => Wir schicken die Sendungsnummer innerhalb von 24 Stunden nach dem Versand per E-Mail; der erste Scan kann bis zu 48 Stunden dauern.
damaged_parcel: Der Karton war eingedrückt und der Artikel ist kaputt, was tun? => Melden Sie es innerhalb von 48 Stunden nach der Zustellung mit Fotos von Paket und Artikel. Wir schicken kostenlos Ersatz oder erstatten den vollen Betrag.
payment_methods: Welche Zahlungsarten bieten Sie an? => Wir akzeptieren Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay und Alipay, abgerechnet in USD oder EUR.
payment_failed: Die Zahlung ist fehlgeschlagen, aber das Geld ist reserviert, warum? => Bei einer fehlgeschlagenen Zahlung entsteht keine Bestellung, und der reservierte Betrag wird innerhalb von 5 Tagen automatisch freigegeben. Sie können es mit derselben Karte oder einer anderen Zahlungsart erneut versuchen.
change_address: Kann ich die Lieferadresse noch ändern? => Sie können die Adresse innerhalb von 2 Stunden nach der Bestellung per Live-Chat oder E-Mail mit Ihrer Bestellnummer ändern. Nach 2 Stunden ist das nicht mehr möglich.
cancel_order: Wie storniere ich eine gerade aufgegebene Bestellung? => Sie können innerhalb von 2 Stunden kostenlos über My Orders stornieren. Danach können Sie nach der Lieferung zurücksenden.
returns_refunds: Wie läuft eine Rücksendung ab und wohin geht die Erstattung? => Starten Sie die Rücksendung über My Orders. Wir prüfen den Artikel innerhalb von 3 Werktagen nach Eingang und erstatten auf die ursprüngliche Zahlungsart.
support_hours: Zu welchen Zeiten erreiche ich jemanden im Chat? => Live-Chat und E-Mail-Support sind Montag bis Samstag von 08:00 bis 20:00 UTC erreichbar.
""",
    "pt": """
shipping_standard: Quantos dias demora o envio normal depois de despachado? => O envio padrão leva 7-12 dias úteis a partir do despacho, e despachamos em 1 dia útil após o pagamento.
shipping_express: Vocês têm entrega rápida? Quanto tempo leva? => Sim, o envio expresso leva 3-5 dias úteis a partir do despacho e custa 14.90 USD ou 14.90 EUR.
free_shipping: A partir de que valor o frete é grátis? => O envio padrão é grátis em pedidos acima de 49 USD ou 49 EUR; abaixo disso custa 5.90 USD ou 5.90 EUR.
customs_duties: Vou pagar imposto de importação no Brasil? => Sim. Só pedidos para EU, GB, US e AU têm impostos incluídos; nos outros países você paga os impostos na entrega.
tracking_number: Quando recebo o código de rastreio? => Enviamos o código de rastreio por e-mail em até 24 horas após o despacho; o primeiro registro pode levar até 48 horas.
damaged_parcel: A caixa chegou amassada e o produto quebrado, e agora? => Avise-nos em até 48 horas após a entrega com fotos da embalagem e do produto. Enviamos uma reposição grátis ou reembolsamos o valor total.
payment_methods: Quais formas de pagamento vocês aceitam? => Aceitamos Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay e Alipay, cobrados em USD ou EUR.
payment_failed: O pagamento falhou mas o valor ficou preso no cartão, por quê? => Quando o pagamento falha nenhum pedido é criado, e o valor retido é liberado automaticamente em até 5 dias. Você pode tentar de novo com o mesmo cartão ou outro meio.
change_address: Ainda consigo alterar o endereço de entrega? => Você pode alterar o endereço em até 2 horas após o pedido pelo chat ou e-mail com o número do pedido. Depois de 2 horas não é mais possível.
cancel_order: Como cancelo um pedido que acabei de fazer? => Você pode cancelar sem custo em até 2 horas pelo My Orders. Depois disso, pode devolver após a entrega.
returns_refunds: Como funciona a devolução e para onde vai o reembolso? => Inicie a devolução em My Orders. Verificamos o item em até 3 dias úteis após a chegada e reembolsamos no meio de pagamento original.
support_hours: Em que horário posso falar com um atendente? => O chat e o suporte por e-mail funcionam de segunda a sábado, das 08:00 às 20:00 UTC.
""",
    "ru": """
shipping_standard: Сколько дней идёт обычная доставка после отправки? => Стандартная доставка занимает 7-12 рабочих дней после отправки, а отправляем мы в течение 1 рабочего дня после оплаты.
shipping_express: Есть ли срочная доставка и насколько она быстрая? => Да, экспресс-доставка занимает 3-5 рабочих дней после отправки и стоит 14.90 USD или 14.90 EUR.
free_shipping: С какой суммы доставка бесплатная? => Стандартная доставка бесплатна для заказов дороже 49 USD или 49 EUR; иначе она стоит 5.90 USD или 5.90 EUR.
customs_duties: Придётся ли платить пошлину при доставке в Россию? => Да. Пошлины включены только в заказы в EU, GB, US и AU; в остальных странах пошлины и налоги оплачиваются при получении.
tracking_number: Когда я получу трек-номер? => Мы присылаем трек-номер по email в течение 24 часов после отправки; первое сканирование может появиться через 48 часов.
damaged_parcel: Коробка пришла смятой, а товар сломан, что делать? => Сообщите нам в течение 48 часов после доставки и приложите фото посылки и товара. Мы бесплатно пришлём замену или полностью вернём деньги.
payment_methods: Какие способы оплаты вы принимаете? => Мы принимаем Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay и Alipay, оплата в USD или EUR.
payment_failed: Оплата не прошла, но деньги заблокированы на карте, почему? => Если оплата не прошла, заказ не создаётся, а заблокированная сумма автоматически освобождается в течение 5 дней. Можно попробовать снова той же картой или другим способом.
change_address: Можно ли ещё поменять адрес доставки? => Адрес можно изменить в течение 2 часов после заказа через чат или email, указав номер заказа. Через 2 часа изменить его уже нельзя.
cancel_order: Как отменить только что сделанный заказ? => Заказ можно бесплатно отменить в течение 2 часов в разделе My Orders. Позже его можно вернуть после доставки.
returns_refunds: Как оформить возврат и куда придут деньги? => Оформите возврат в разделе My Orders. Мы проверяем товар в течение 3 рабочих дней после поступления и возвращаем деньги на исходный способ оплаты.
support_hours: В какие часы можно написать оператору? => Чат и поддержка по email работают с понедельника по субботу, 08:00-20:00 UTC.
""",
    "ja": """
shipping_standard: 発送後、通常配送だと何日で届きますか？ => 通常配送は発送から7-12営業日かかります。お支払いから1営業日以内に発送します。
shipping_express: 速達はありますか？何日で届きますか？ => はい、速達は発送から3-5営業日で、料金は一律14.90 USDまたは14.90 EURです。
free_shipping: いくら以上買えば送料無料になりますか？ => 49 USDまたは49 EURを超えるご注文は通常送料が無料です。それ未満は5.90 USDまたは5.90 EURです。
customs_duties: 日本への配送で関税はかかりますか？ => はい。EU、GB、US、AU宛ては税込みですが、それ以外の国では関税や輸入税を受け取り時にお支払いいただきます。
tracking_number: 追跡番号はいつ届きますか？ => 発送後24時間以内に追跡番号をメールでお送りします。最初のスキャン表示まで最大48時間かかることがあります。
damaged_parcel: 箱がつぶれて商品が壊れていました。どうすればいいですか？ => 配達から48時間以内に、箱と商品の写真を添えてご連絡ください。無料で交換品をお送りするか全額返金します。
payment_methods: どの支払い方法が使えますか？ => Visa、Mastercard、American Express、PayPal、Apple Pay、Google Pay、Alipayがご利用いただけます。決済はUSDまたはEURです。
payment_failed: 決済に失敗したのにお金が引き落とされています。 => 決済に失敗した場合、注文は作成されず、保留された金額は5日以内に自動で解除されます。同じカードか別の方法で再度お試しください。
change_address: 配送先の住所はまだ変更できますか？ => ご注文から2時間以内であれば、チャットかメールで注文番号をお知らせいただければ変更できます。2時間を過ぎると変更できません。
cancel_order: さっきの注文を取り消すにはどうすればいいですか？ => ご注文から2時間以内ならMy Ordersから無料でキャンセルできます。その後は配達後に返品となります。
returns_refunds: 返品の流れと返金先を教えてください。 => My Ordersから返品を開始してください。到着後3営業日以内に検品し、元のお支払い方法に返金します。
support_hours: オペレーターとチャットできる時間は？ => チャットとメールサポートは月曜から土曜の08:00-20:00 UTCです。
""",
    "ko": """
shipping_standard: 발송 후 일반 배송은 며칠 걸리나요? => 일반 배송은 발송 후 7-12영업일이 걸리며, 결제 후 1영업일 이내에 발송합니다.
shipping_express: 빠른 배송이 있나요? 얼마나 빠른가요? => 네, 특급 배송은 발송 후 3-5영업일이 걸리고 요금은 14.90 USD 또는 14.90 EUR입니다.
free_shipping: 얼마 이상 사면 무료 배송인가요? => 49 USD 또는 49 EUR를 넘는 주문은 일반 배송이 무료이고, 그 미만은 5.90 USD 또는 5.90 EUR입니다.
customs_duties: 한국으로 배송되면 관세를 내야 하나요? => 네. EU, GB, US, AU 주문만 관세가 포함되어 있고, 그 밖의 국가는 수령 시 관세와 수입세를 내셔야 합니다.
tracking_number: 발송되면 송장 번호는 며칠 안에 알려 주시나요? => 발송 후 24시간 이내에 이메일로 운송장 번호를 보내 드리며, 첫 스캔 표시까지 최대 48시간이 걸릴 수 있습니다.
damaged_parcel: 상자가 찌그러져서 왔고 상품이 깨졌어요. 어떻게 하죠? => 배송 후 48시간 이내에 상자와 상품 사진을 보내 주세요. 무료로 교환품을 보내 드리거나 전액 환불해 드립니다.
payment_methods: 어떤 결제 수단을 쓸 수 있나요? => Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay, Alipay를 받으며 USD 또는 EUR로 결제됩니다.
payment_failed: 결제가 실패했는데 돈이 묶여 있어요. 왜 그런가요? => 결제가 실패하면 주문은 생성되지 않고, 보류된 금액은 5일 이내에 자동으로 풀립니다. 같은 카드나 다른 결제 수단으로 다시 시도하세요.
change_address: 배송지 주소를 아직 바꿀 수 있나요? => 주문 후 2시간 이내라면 채팅이나 이메일로 주문 번호와 함께 요청하시면 변경됩니다. 2시간이 지나면 변경할 수 없습니다.
cancel_order: 방금 한 주문은 어떻게 취소하나요? => 주문 후 2시간 이내에는 My Orders에서 무료로 취소할 수 있습니다. 그 이후에는 배송 후 반품하셔야 합니다.
returns_refunds: 반품은 어떻게 하고 환불은 어디로 되나요? => My Orders에서 반품을 시작하세요. 도착 후 3영업일 이내에 검수하고 원래 결제 수단으로 환불합니다.
support_hours: 상담원과 채팅할 수 있는 시간은요? => 채팅과 이메일 상담은 월요일부터 토요일 08:00-20:00 UTC에 운영합니다.
""",
    "it": """
shipping_standard: Quanti giorni ci vogliono per la spedizione normale dopo l'invio? => La spedizione standard richiede 7-12 giorni lavorativi dall'invio, e spediamo entro 1 giorno lavorativo dal pagamento.
shipping_express: C'è una spedizione veloce? Quanto ci mette? => Sì, la spedizione express richiede 3-5 giorni lavorativi dall'invio e costa 14.90 USD o 14.90 EUR.
free_shipping: Da quale importo la spedizione è gratuita? => La spedizione standard è gratuita sopra 49 USD o 49 EUR; sotto costa 5.90 USD o 5.90 EUR.
customs_duties: Pagherò la dogana per una consegna in Italia? => No, gli ordini verso EU, GB, US e AU sono spediti DDP: dazi e tasse sono inclusi e alla consegna non è dovuto nulla.
tracking_number: Dopo la spedizione, entro quanto mi mandate il codice di tracciamento? => Inviamo il numero di tracciamento via email entro 24 ore dalla spedizione; la prima scansione può richiedere fino a 48 ore.
damaged_parcel: La scatola è arrivata schiacciata e l'articolo è rotto, cosa faccio? => Ce lo segnali entro 48 ore dalla consegna con foto del pacco e dell'articolo. Inviamo una sostituzione gratuita o rimborsiamo l'intero importo.
payment_methods: Quali metodi di pagamento accettate? => Accettiamo Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay e Alipay, con addebito in USD o EUR.
payment_failed: Il pagamento non è riuscito ma la somma è bloccata, perché? => Se il pagamento non riesce nessun ordine viene creato e l'importo bloccato si sblocca automaticamente entro 5 giorni. Può riprovare con la stessa carta o un altro metodo.
change_address: Posso ancora modificare l'indirizzo di consegna? => Può cambiarlo entro 2 ore dall'ordine via chat o email indicando il numero d'ordine. Dopo 2 ore non è più possibile.
cancel_order: Come annullo un ordine appena fatto? => Può annullarlo gratis entro 2 ore da My Orders. Dopo potrà restituirlo alla consegna.
returns_refunds: Come funziona un reso e dove arriva il rimborso? => Avvii il reso da My Orders. Controlliamo l'articolo entro 3 giorni lavorativi dall'arrivo e rimborsiamo sul metodo di pagamento originale.
support_hours: In che orari posso parlare con un operatore? => Chat e supporto via email sono attivi dal lunedì al sabato, 08:00-20:00 UTC.
""",
    "tr": """
shipping_standard: Kargoya verildikten sonra normal teslimat kaç gün sürer? => Standart kargo gönderimden itibaren 7-12 iş günü sürer ve ödemeden sonra 1 iş günü içinde gönderiyoruz.
shipping_express: Hızlı kargo var mı, ne kadar sürer? => Evet, ekspres kargo gönderimden itibaren 3-5 iş günü sürer ve sabit 14.90 USD veya 14.90 EUR'dur.
free_shipping: Kargo hangi tutardan sonra ücretsiz? => 49 USD veya 49 EUR üzerindeki siparişlerde standart kargo ücretsizdir; altında 5.90 USD veya 5.90 EUR'dur.
customs_duties: Türkiye'ye gönderimde gümrük vergisi öder miyim? => Evet. Yalnızca EU, GB, US ve AU siparişlerinde vergiler dahildir; diğer ülkelerde vergileri teslimatta siz ödersiniz.
tracking_number: Takip numarasını ne zaman alırım? => Takip numarasını gönderimden sonra 24 saat içinde e-postayla iletiyoruz; ilk tarama 48 saate kadar sürebilir.
damaged_parcel: Kutu ezik geldi ve ürün kırık, ne yapmalıyım? => Teslimattan sonra 48 saat içinde paketin ve ürünün fotoğraflarıyla bildirin. Ücretsiz yenisini gönderir ya da tüm tutarı iade ederiz.
payment_methods: Hangi ödeme yöntemlerini kabul ediyorsunuz? => Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay ve Alipay kabul ediyoruz; ödemeler USD veya EUR ile alınır.
payment_failed: Ödeme başarısız oldu ama para kartımda bloke, neden? => Ödeme başarısız olursa sipariş oluşmaz ve bloke tutar 5 gün içinde otomatik olarak serbest kalır. Aynı kartla veya başka bir yöntemle tekrar deneyebilirsiniz.
change_address: Teslimat adresini hâlâ değiştirebilir miyim? => Siparişten sonraki 2 saat içinde canlı destek veya e-postayla sipariş numaranızı vererek değiştirebilirsiniz. 2 saatten sonra değiştirilemez.
cancel_order: Az önce verdiğim siparişi nasıl iptal ederim? => Siparişten sonraki 2 saat içinde My Orders üzerinden ücretsiz iptal edebilirsiniz. Sonrasında teslimattan sonra iade edebilirsiniz.
returns_refunds: İade nasıl yapılır, para nereye iade edilir? => İadeyi My Orders üzerinden başlatın. Ürünü ulaştıktan sonra 3 iş günü içinde kontrol eder ve ilk ödeme yönteminize iade ederiz.
support_hours: Temsilciyle hangi saatlerde konuşabilirim? => Canlı destek ve e-posta desteği pazartesiden cumartesiye 08:00-20:00 UTC arasında açıktır.
""",
    "id": """
shipping_standard: Berapa hari pengiriman biasa setelah paket dikirim? => Pengiriman standar memakan 7-12 hari kerja sejak dikirim, dan kami mengirim dalam 1 hari kerja setelah pembayaran.
shipping_express: Apakah ada pengiriman kilat? Berapa lama? => Ya, pengiriman ekspres memakan 3-5 hari kerja sejak dikirim dengan biaya tetap 14.90 USD atau 14.90 EUR.
free_shipping: Mulai dari berapa belanja ongkirnya gratis? => Pengiriman standar gratis untuk pesanan di atas 49 USD atau 49 EUR; di bawah itu biayanya 5.90 USD atau 5.90 EUR.
customs_duties: Apakah saya harus bayar bea masuk untuk kiriman ke Indonesia? => Ya. Hanya pesanan ke EU, GB, US, dan AU yang sudah termasuk bea; di negara lain bea dan pajak impor dibayar saat barang diterima.
tracking_number: Kapan saya dapat nomor resi? => Kami mengirim nomor resi lewat email dalam 24 jam setelah pengiriman; pemindaian pertama bisa muncul hingga 48 jam.
damaged_parcel: Kardusnya penyok dan barangnya rusak, bagaimana ini? => Laporkan dalam 48 jam setelah diterima dengan foto paket dan barang. Kami kirim pengganti gratis atau mengembalikan dana penuh.
payment_methods: Metode pembayaran apa saja yang diterima? => Kami menerima Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay, dan Alipay, ditagih dalam USD atau EUR.
payment_failed: Pembayaran gagal tapi dana saya tertahan, kenapa? => Jika pembayaran gagal, tidak ada pesanan yang dibuat dan dana yang tertahan dilepas otomatis dalam 5 hari. Anda bisa mencoba lagi dengan kartu yang sama atau metode lain.
change_address: Apakah alamat pengiriman masih bisa diganti? => Alamat bisa diganti dalam 2 jam setelah memesan lewat live chat atau email dengan nomor pesanan. Setelah 2 jam tidak bisa diubah lagi.
cancel_order: Bagaimana membatalkan pesanan yang baru saja saya buat? => Anda bisa membatalkan gratis dalam 2 jam lewat My Orders. Setelah itu, barang bisa dikembalikan setelah diterima.
returns_refunds: Bagaimana cara retur dan uangnya dikembalikan ke mana? => Mulai retur dari My Orders. Kami memeriksa barang dalam 3 hari kerja setelah tiba dan mengembalikan dana ke metode pembayaran awal.
support_hours: Jam berapa saya bisa chat dengan petugas? => Live chat dan dukungan email buka Senin sampai Sabtu, 08:00-20:00 UTC.
""",
    "vi": """
shipping_standard: Giao hàng thường mất bao nhiêu ngày sau khi gửi đi? => Giao hàng tiêu chuẩn mất 7-12 ngày làm việc kể từ khi gửi, và chúng tôi gửi hàng trong 1 ngày làm việc sau khi thanh toán.
shipping_express: Có giao hàng nhanh không, mất bao lâu? => Có, giao hàng hỏa tốc mất 3-5 ngày làm việc kể từ khi gửi, phí cố định 14.90 USD hoặc 14.90 EUR.
free_shipping: Đơn từ bao nhiêu thì được miễn phí vận chuyển? => Giao hàng tiêu chuẩn miễn phí cho đơn trên 49 USD hoặc 49 EUR; dưới mức đó phí là 5.90 USD hoặc 5.90 EUR.
customs_duties: Gửi về Việt Nam tôi có phải đóng thuế nhập khẩu không? => Có. Chỉ đơn đến EU, GB, US và AU đã gồm thuế; ở các nước khác bạn trả thuế khi nhận hàng.
tracking_number: Khi nào tôi nhận được mã vận đơn? => Chúng tôi gửi mã vận đơn qua email trong vòng 24 giờ sau khi gửi hàng; lần quét đầu tiên có thể mất đến 48 giờ.
damaged_parcel: Hộp bị móp và sản phẩm bị vỡ, tôi phải làm sao? => Hãy báo cho chúng tôi trong vòng 48 giờ sau khi nhận kèm ảnh gói hàng và sản phẩm. Chúng tôi gửi hàng thay thế miễn phí hoặc hoàn tiền toàn bộ.
payment_methods: Shop nhận những hình thức thanh toán nào? => Chúng tôi nhận Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay và Alipay, thanh toán bằng USD hoặc EUR.
payment_failed: Thanh toán thất bại nhưng tiền bị giữ trong tài khoản, sao vậy? => Khi thanh toán thất bại sẽ không có đơn hàng nào được tạo, và số tiền bị giữ sẽ tự động được trả lại trong vòng 5 ngày. Bạn có thể thử lại bằng thẻ cũ hoặc phương thức khác.
change_address: Tôi còn đổi được địa chỉ giao hàng không? => Bạn có thể đổi địa chỉ trong vòng 2 giờ sau khi đặt qua chat hoặc email kèm mã đơn hàng. Sau 2 giờ thì không đổi được nữa.
cancel_order: Làm sao hủy đơn vừa đặt? => Bạn có thể hủy miễn phí trong vòng 2 giờ trong My Orders. Sau đó bạn có thể trả hàng sau khi nhận.
returns_refunds: Trả hàng thế nào và tiền hoàn về đâu? => Hãy tạo yêu cầu trả hàng trong My Orders. Chúng tôi kiểm tra hàng trong 3 ngày làm việc sau khi nhận và hoàn tiền về phương thức thanh toán ban đầu.
support_hours: Mấy giờ tôi có thể chat với nhân viên? => Chat và hỗ trợ email mở cửa từ thứ Hai đến thứ Bảy, 08:00-20:00 UTC.
""",
    "th": """
shipping_standard: หลังส่งของแล้ว การจัดส่งปกติใช้เวลากี่วัน => การจัดส่งแบบมาตรฐานใช้เวลา 7-12 วันทำการนับจากวันส่ง และเราส่งของภายใน 1 วันทำการหลังชำระเงิน
shipping_express: มีส่งด่วนไหม ใช้เวลากี่วัน => มีค่ะ ส่งด่วนใช้เวลา 3-5 วันทำการนับจากวันส่ง ค่าส่งคงที่ 14.90 USD หรือ 14.90 EUR
free_shipping: ซื้อเท่าไรถึงส่งฟรี => ส่งมาตรฐานฟรีเมื่อสั่งเกิน 49 USD หรือ 49 EUR ถ้าต่ำกว่านั้นค่าส่ง 5.90 USD หรือ 5.90 EUR
customs_duties: ส่งมาไทยต้องจ่ายภาษีนำเข้าเองไหม => ต้องจ่ายค่ะ มีเพียงคำสั่งซื้อไป EU, GB, US และ AU ที่รวมภาษีแล้ว ประเทศอื่นลูกค้าจ่ายภาษีตอนรับของ
tracking_number: จะได้เลขพัสดุเมื่อไร => เราส่งเลขพัสดุทางอีเมลภายใน 24 ชั่วโมงหลังส่งของ และการสแกนครั้งแรกอาจใช้เวลาถึง 48 ชั่วโมง
damaged_parcel: กล่องบุบมาและสินค้าแตก ต้องทำอย่างไร => แจ้งเราภายใน 48 ชั่วโมงหลังได้รับ พร้อมรูปกล่องและสินค้า เราจะส่งของใหม่ให้ฟรีหรือคืนเงินเต็มจำนวน
payment_methods: รับชำระเงินช่องทางไหนบ้าง => เรารับ Visa, Mastercard, American Express, PayPal, Apple Pay, Google Pay และ Alipay โดยเรียกเก็บเป็น USD หรือ EUR
payment_failed: ชำระเงินไม่สำเร็จแต่เงินถูกกันไว้ เพราะอะไร => เมื่อชำระเงินไม่สำเร็จจะไม่มีการสร้างคำสั่งซื้อ และยอดที่ถูกกันไว้จะคืนอัตโนมัติภายใน 5 วัน ลองชำระใหม่ด้วยบัตรเดิมหรือช่องทางอื่นได้
change_address: ยังเปลี่ยนที่อยู่จัดส่งได้ไหม => เปลี่ยนได้ภายใน 2 ชั่วโมงหลังสั่งซื้อ ผ่านแชทหรืออีเมลพร้อมเลขคำสั่งซื้อ หลัง 2 ชั่วโมงจะเปลี่ยนไม่ได้แล้ว
cancel_order: จะยกเลิกคำสั่งซื้อที่เพิ่งสั่งได้อย่างไร => ยกเลิกได้ฟรีภายใน 2 ชั่วโมงผ่าน My Orders หลังจากนั้นสามารถคืนสินค้าได้หลังได้รับของ
returns_refunds: คืนสินค้าอย่างไร และเงินคืนเข้าที่ไหน => เริ่มคืนสินค้าได้ที่ My Orders เราตรวจสินค้าภายใน 3 วันทำการหลังถึงคลัง และคืนเงินเข้าช่องทางชำระเงินเดิม
support_hours: ติดต่อเจ้าหน้าที่ทางแชทได้กี่โมง => แชทและอีเมลเปิดบริการวันจันทร์ถึงวันเสาร์ เวลา 08:00-20:00 UTC
""",
}


def support_pairs() -> dict[str, list[tuple[str, list[str], str]]]:
    """lang -> [(faq id, questions, answer)]."""
    out: dict[str, list[tuple[str, list[str], str]]] = {}
    for lang, block in _RAW.items():
        rows = []
        for line in block.strip().splitlines():
            entry, _, rest = line.partition(":")
            questions, _, answer = rest.partition("=>")
            rows.append((entry.strip(), [q.strip() for q in questions.split(" | ") if q.strip()],
                         answer.strip()))
        out[lang] = rows
    return out
