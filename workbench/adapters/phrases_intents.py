"""Customer messages per intent in the 15 languages, for the intent-routing training data.

Written for training only and phrased apart from the eval items (a test checks that no eval
text appears in the generated data). One line per intent: ``intent: phrase | phrase | ...``.
``{order}`` becomes an order number (masked as [ORDER_ID] before training), ``{product}``
a product from the language's product list.
"""
from __future__ import annotations

_RAW: dict[str, str] = {
    "en": """
order_tracking: Can you tell me where my parcel is at the moment? | The tracking for order {order} has not moved in four days, is it lost? | My package was supposed to arrive yesterday and I have no idea where it is.
shipping_time: How many days does delivery to Toronto usually take? | When can I expect the {product} to arrive if I buy it now? | What is the usual delivery time to Singapore?
customs_duties: Do I have to pay import tax when my order arrives in Norway? | Are customs fees already included in the price for Switzerland? | Will the courier ask me for duties on delivery?
return_policy: How many days do I have to return something I don't like? | Can I send back the {product} if I change my mind? | Who pays the shipping when I return an item?
refund_status: You received my returned parcel last week, when will I get my money? | I still haven't seen the refund for my return on my account. | How long until the refund for order {order} reaches my bank?
cancel_order: I ordered by mistake an hour ago, please stop the order. | I need to cancel my purchase of the {product} right away. | Can you call off order {order}? I no longer need it.
payment_failed: The payment page shows an error every time I try to pay. | My bank declined the transaction but I have enough funds. | PayPal says the payment failed, what should I do?
change_address: I typed the wrong street number, can you correct my shipping address? | Please send my parcel to my office instead of my home. | Can the delivery address on order {order} still be updated?
product_info: Is the {product} waterproof? | What material is the {product} made of? | Does the {product} come in a larger size?
warranty_defect: The {product} stopped working after three days. | The seam of my {product} came apart, is that covered by the warranty? | The screen of the device I bought is flickering, I want a repair.
complaint: I am very disappointed with how my case was handled. | Your courier was rude and threw my parcel over the fence. | This is the third time I write to you and nobody replies, unacceptable.
account_login: I forgot my password and can't log into my account. | The verification code never arrives, so I cannot sign in. | My account is locked after too many login attempts.
""",
    "zh": """
order_tracking: 请帮我查一下我的包裹现在到哪里了？ | 订单{order}的物流信息四天没有更新了，是不是丢了？ | 包裹本来昨天应该到，现在完全不知道在哪。
shipping_time: 寄到上海一般需要几天？ | 如果我现在买{product}，大概什么时候能收到？ | 发往新加坡通常要多久？
customs_duties: 包裹到中国的时候需要交进口税吗？ | 价格里包含关税吗？ | 快递员送货时会向我收关税吗？
return_policy: 不喜欢的话多少天内可以退货？ | 如果我改变主意，{product}可以退吗？ | 退货的运费由谁承担？
refund_status: 你们上周已经收到我的退货了，什么时候退款？ | 我的退款到现在还没到账。 | 订单{order}的退款多久能退回银行卡？
cancel_order: 我一小时前下错单了，请帮我取消。 | 我要马上取消购买的{product}。 | 订单{order}我不需要了，可以取消吗？
payment_failed: 每次付款页面都显示错误。 | 银行拒绝了这笔交易，但我余额是够的。 | 支付宝显示付款失败，我该怎么办？
change_address: 我把门牌号写错了，能帮我改一下收货地址吗？ | 请把包裹寄到我公司，不要寄到家里。 | 订单{order}的收货地址还能修改吗？
product_info: 这款{product}防水吗？ | {product}是什么材质的？ | {product}有大一号的尺码吗？
warranty_defect: {product}用了三天就坏了。 | 我的{product}开线了，在保修范围内吗？ | 买的设备屏幕一直闪，我要维修。
complaint: 你们处理我问题的方式让我非常失望。 | 你们的快递员态度很差，还把包裹扔过了围栏。 | 这是我第三次写信了，一直没人回复，太不像话了。
account_login: 我忘记密码了，登录不了账户。 | 验证码一直收不到，没法登录。 | 登录失败次数太多，账户被锁了。
""",
    "es": """
order_tracking: ¿Me podéis decir dónde está mi paquete ahora mismo? | El seguimiento del pedido {order} lleva cuatro días sin moverse, ¿se ha perdido? | Mi paquete tenía que llegar ayer y no sé dónde está.
shipping_time: ¿Cuántos días tarda normalmente el envío a Bogotá? | Si compro ahora la {product}, ¿cuándo me llegaría? | ¿Cuál es el plazo habitual de entrega a Lima?
customs_duties: ¿Tengo que pagar impuestos de importación cuando llegue el pedido? | ¿Los aranceles ya están incluidos en el precio? | ¿El repartidor me cobrará aduana en la entrega?
return_policy: ¿Cuántos días tengo para devolver algo que no me gusta? | ¿Puedo devolver la {product} si cambio de idea? | ¿Quién paga el envío de una devolución?
refund_status: Recibisteis mi devolución la semana pasada, ¿cuándo me devolvéis el dinero? | Todavía no veo el reembolso de mi devolución en la cuenta. | ¿Cuánto tarda en llegar al banco el reembolso del pedido {order}?
cancel_order: Hice un pedido por error hace una hora, por favor anuladlo. | Necesito cancelar ya la compra de la {product}. | ¿Podéis anular el pedido {order}? Ya no lo necesito.
payment_failed: La página de pago da error cada vez que intento pagar. | Mi banco rechazó la operación aunque tengo saldo. | PayPal dice que el pago ha fallado, ¿qué hago?
change_address: Puse mal el número de la calle, ¿podéis corregir la dirección de envío? | Enviad el paquete a mi oficina en lugar de a mi casa, por favor. | ¿Todavía se puede cambiar la dirección del pedido {order}?
product_info: ¿La {product} es impermeable? | ¿De qué material está hecha la {product}? | ¿La {product} viene en una talla más grande?
warranty_defect: La {product} dejó de funcionar a los tres días. | Se ha descosido la {product}, ¿lo cubre la garantía? | La pantalla del aparato que compré parpadea, quiero una reparación.
complaint: Estoy muy decepcionado con cómo se ha gestionado mi caso. | Vuestro repartidor fue grosero y tiró mi paquete por encima de la valla. | Es la tercera vez que escribo y nadie contesta, es inaceptable.
account_login: Olvidé mi contraseña y no puedo entrar en mi cuenta. | El código de verificación nunca llega y no puedo iniciar sesión. | Mi cuenta está bloqueada por demasiados intentos de acceso.
""",
    "ar": """
order_tracking: هل يمكنكم إخباري أين طردي الآن؟ | تتبع الطلب {order} لم يتغير منذ أربعة أيام، هل ضاع؟ | كان من المفترض أن يصل طردي أمس ولا أعرف أين هو.
shipping_time: كم يومًا يستغرق التوصيل إلى عمّان عادةً؟ | إذا اشتريت {product} الآن، متى سيصلني؟ | ما هي مدة التوصيل المعتادة إلى الكويت؟
customs_duties: هل علي دفع ضريبة استيراد عند وصول طلبي؟ | هل الرسوم الجمركية مشمولة في السعر؟ | هل سيطلب مني المندوب رسومًا جمركية عند التسليم؟
return_policy: كم يومًا لدي لإرجاع منتج لم يعجبني؟ | هل يمكنني إرجاع {product} إذا غيرت رأيي؟ | من يدفع تكلفة الشحن عند الإرجاع؟
refund_status: استلمتم المرتجع الأسبوع الماضي، متى سأسترد أموالي؟ | لم يصل المبلغ المسترد إلى حسابي حتى الآن. | كم من الوقت يحتاج استرداد مبلغ الطلب {order} إلى البنك؟
cancel_order: طلبت بالخطأ قبل ساعة، أرجو إيقاف الطلب. | أحتاج إلى إلغاء شراء {product} فورًا. | هل يمكنكم إلغاء الطلب {order}؟ لم أعد بحاجة إليه.
payment_failed: صفحة الدفع تعرض خطأ في كل مرة أحاول الدفع. | رفض البنك العملية مع أن رصيدي كافٍ. | يقول PayPal إن الدفع فشل، ماذا أفعل؟
change_address: كتبت رقم الشارع خطأ، هل يمكنكم تصحيح عنوان الشحن؟ | أرجو إرسال الطرد إلى مكتبي بدلًا من منزلي. | هل ما زال بالإمكان تعديل عنوان الطلب {order}؟
product_info: هل {product} مقاوم للماء؟ | من أي مادة مصنوع {product}؟ | هل يتوفر {product} بمقاس أكبر؟
warranty_defect: توقف {product} عن العمل بعد ثلاثة أيام. | انفكت خياطة {product}، هل يغطي الضمان ذلك؟ | شاشة الجهاز الذي اشتريته ترمش، أريد إصلاحه.
complaint: أنا مستاء جدًا من طريقة التعامل مع مشكلتي. | كان مندوب التوصيل وقحًا ورمى طردي فوق السور. | هذه ثالث مرة أكتب لكم ولا أحد يرد، هذا غير مقبول.
account_login: نسيت كلمة المرور ولا أستطيع الدخول إلى حسابي. | رمز التحقق لا يصل أبدًا فلا أستطيع تسجيل الدخول. | تم قفل حسابي بعد محاولات دخول كثيرة.
""",
    "fr": """
order_tracking: Pouvez-vous me dire où se trouve mon colis en ce moment ? | Le suivi de la commande {order} ne bouge plus depuis quatre jours, est-il perdu ? | Mon colis devait arriver hier et je ne sais pas où il est.
shipping_time: Combien de jours faut-il pour une livraison à Montréal ? | Si j'achète la {product} maintenant, quand vais-je la recevoir ? | Quel est le délai de livraison habituel pour Genève ?
customs_duties: Dois-je payer des taxes d'importation à l'arrivée de ma commande ? | Les frais de douane sont-ils compris dans le prix ? | Le livreur va-t-il me demander des droits de douane ?
return_policy: De combien de jours je dispose pour renvoyer un article qui ne me plaît pas ? | Puis-je retourner la {product} si je change d'avis ? | Qui paie les frais de port d'un retour ?
refund_status: Vous avez reçu mon retour la semaine dernière, quand serai-je remboursé ? | Je ne vois toujours pas le remboursement de mon retour sur mon compte. | Combien de temps pour que le remboursement de la commande {order} arrive sur ma banque ?
cancel_order: J'ai commandé par erreur il y a une heure, merci d'arrêter la commande. | Je dois annuler tout de suite l'achat de la {product}. | Pouvez-vous annuler la commande {order} ? Je n'en ai plus besoin.
payment_failed: La page de paiement affiche une erreur à chaque tentative. | Ma banque a refusé la transaction alors que j'ai assez d'argent. | PayPal indique que le paiement a échoué, que dois-je faire ?
change_address: Je me suis trompé de numéro de rue, pouvez-vous corriger l'adresse de livraison ? | Merci d'envoyer mon colis à mon bureau plutôt qu'à mon domicile. | L'adresse de la commande {order} peut-elle encore être modifiée ?
product_info: La {product} est-elle imperméable ? | En quelle matière est faite la {product} ? | La {product} existe-t-elle dans une taille au-dessus ?
warranty_defect: La {product} ne fonctionne plus après trois jours. | La couture de ma {product} a lâché, est-ce couvert par la garantie ? | L'écran de l'appareil acheté clignote, je veux une réparation.
complaint: Je suis très déçu de la façon dont mon dossier a été traité. | Votre livreur a été impoli et a jeté mon colis par-dessus la clôture. | C'est la troisième fois que j'écris et personne ne répond, c'est inadmissible.
account_login: J'ai oublié mon mot de passe et je n'arrive pas à me connecter. | Le code de vérification n'arrive jamais, impossible de me connecter. | Mon compte est bloqué après trop de tentatives de connexion.
""",
    "de": """
order_tracking: Können Sie mir sagen, wo mein Paket gerade ist? | Die Sendungsverfolgung von Bestellung {order} hat sich seit vier Tagen nicht bewegt, ist es verloren? | Mein Paket sollte gestern kommen und ich weiß nicht, wo es ist.
shipping_time: Wie viele Tage dauert die Lieferung nach Zürich normalerweise? | Wann kommt die {product} an, wenn ich sie jetzt kaufe? | Wie lange ist die übliche Lieferzeit nach Wien?
customs_duties: Muss ich Einfuhrsteuer zahlen, wenn meine Bestellung ankommt? | Sind Zollgebühren schon im Preis enthalten? | Verlangt der Zusteller bei der Lieferung Zoll von mir?
return_policy: Wie viele Tage habe ich, um etwas zurückzuschicken, das mir nicht gefällt? | Kann ich die {product} zurückgeben, wenn ich es mir anders überlege? | Wer trägt die Versandkosten bei einer Rücksendung?
refund_status: Sie haben meine Rücksendung letzte Woche erhalten, wann bekomme ich mein Geld? | Die Erstattung für meine Rücksendung ist immer noch nicht auf meinem Konto. | Wie lange dauert die Rückzahlung für Bestellung {order} auf mein Bankkonto?
cancel_order: Ich habe vor einer Stunde versehentlich bestellt, bitte stoppen Sie die Bestellung. | Ich muss den Kauf der {product} sofort stornieren. | Können Sie Bestellung {order} stornieren? Ich brauche sie nicht mehr.
payment_failed: Die Zahlungsseite zeigt bei jedem Versuch einen Fehler. | Meine Bank hat die Zahlung abgelehnt, obwohl genug Geld da ist. | PayPal meldet, dass die Zahlung fehlgeschlagen ist, was soll ich tun?
change_address: Ich habe die Hausnummer falsch eingegeben, können Sie die Lieferadresse korrigieren? | Bitte schicken Sie das Paket an mein Büro statt nach Hause. | Kann die Adresse von Bestellung {order} noch geändert werden?
product_info: Ist die {product} wasserdicht? | Aus welchem Material ist die {product}? | Gibt es die {product} eine Nummer größer?
warranty_defect: Die {product} funktioniert nach drei Tagen nicht mehr. | Die Naht meiner {product} ist aufgegangen, fällt das unter die Garantie? | Der Bildschirm des gekauften Geräts flackert, ich möchte eine Reparatur.
complaint: Ich bin sehr enttäuscht, wie mein Fall behandelt wurde. | Ihr Zusteller war unhöflich und hat mein Paket über den Zaun geworfen. | Ich schreibe schon zum dritten Mal und niemand antwortet, das ist inakzeptabel.
account_login: Ich habe mein Passwort vergessen und komme nicht in mein Konto. | Der Bestätigungscode kommt nie an, ich kann mich nicht anmelden. | Mein Konto ist nach zu vielen Anmeldeversuchen gesperrt.
""",
    "pt": """
order_tracking: Podem me dizer onde está minha encomenda agora? | O rastreio do pedido {order} não muda há quatro dias, ele se perdeu? | Meu pacote devia ter chegado ontem e não sei onde está.
shipping_time: Quantos dias leva a entrega para Recife normalmente? | Se eu comprar a {product} agora, quando ela chega? | Qual é o prazo de entrega habitual para Luanda?
customs_duties: Vou ter que pagar imposto de importação quando o pedido chegar? | As taxas alfandegárias já estão incluídas no preço? | O entregador vai me cobrar alfândega na entrega?
return_policy: Quantos dias eu tenho para devolver algo de que não gostei? | Posso devolver a {product} se mudar de ideia? | Quem paga o frete da devolução?
refund_status: Vocês receberam minha devolução semana passada, quando recebo o dinheiro? | O reembolso da minha devolução ainda não apareceu na conta. | Quanto tempo o reembolso do pedido {order} leva para cair no banco?
cancel_order: Fiz um pedido por engano há uma hora, por favor parem o pedido. | Preciso cancelar agora a compra da {product}. | Podem cancelar o pedido {order}? Não preciso mais dele.
payment_failed: A página de pagamento dá erro toda vez que tento pagar. | Meu banco recusou a transação, mas tenho saldo. | O PayPal diz que o pagamento falhou, o que faço?
change_address: Digitei o número da rua errado, podem corrigir o endereço de entrega? | Mandem o pacote para o meu escritório em vez da minha casa, por favor. | Ainda dá para mudar o endereço do pedido {order}?
product_info: A {product} é à prova d'água? | De que material é feita a {product}? | A {product} tem um tamanho maior?
warranty_defect: A {product} parou de funcionar depois de três dias. | A costura da minha {product} abriu, a garantia cobre? | A tela do aparelho que comprei fica piscando, quero o conserto.
complaint: Estou muito decepcionado com o jeito que meu caso foi tratado. | O entregador de vocês foi grosso e jogou meu pacote por cima do muro. | É a terceira vez que escrevo e ninguém responde, é inaceitável.
account_login: Esqueci minha senha e não consigo entrar na conta. | O código de verificação nunca chega, então não consigo fazer login. | Minha conta foi bloqueada depois de muitas tentativas de acesso.
""",
    "ru": """
order_tracking: Подскажите, где сейчас моя посылка? | Отслеживание заказа {order} не меняется уже четыре дня, он потерялся? | Посылка должна была прийти вчера, и я не знаю, где она.
shipping_time: Сколько дней обычно идёт доставка в Казань? | Если я куплю {product} сейчас, когда она придёт? | Какой обычный срок доставки в Алматы?
customs_duties: Нужно ли мне платить ввозной налог, когда придёт заказ? | Таможенные сборы уже включены в цену? | Курьер потребует с меня пошлину при доставке?
return_policy: Сколько дней у меня есть, чтобы вернуть то, что не понравилось? | Можно ли вернуть {product}, если я передумаю? | Кто оплачивает доставку при возврате?
refund_status: Вы получили мой возврат на прошлой неделе, когда мне вернут деньги? | Возврат денег за мой возврат до сих пор не пришёл на счёт. | Сколько идёт возврат денег за заказ {order} на банковскую карту?
cancel_order: Я час назад оформил заказ по ошибке, остановите его, пожалуйста. | Мне нужно срочно отменить покупку: {product}. | Можете отменить заказ {order}? Он мне больше не нужен.
payment_failed: Страница оплаты каждый раз выдаёт ошибку. | Банк отклонил операцию, хотя денег на карте достаточно. | PayPal пишет, что платёж не прошёл, что делать?
change_address: Я ошибся в номере дома, можете исправить адрес доставки? | Пожалуйста, отправьте посылку ко мне в офис, а не домой. | Можно ли ещё изменить адрес в заказе {order}?
product_info: {product} водонепроницаемая? | Из какого материала сделана {product}? | Есть ли {product} на размер больше?
warranty_defect: {product} перестала работать через три дня. | У моей вещи ({product}) разошёлся шов, это гарантийный случай? | Экран купленного устройства мерцает, хочу ремонт.
complaint: Я очень разочарован тем, как обработали моё обращение. | Ваш курьер грубил и перекинул мою посылку через забор. | Пишу уже третий раз, и никто не отвечает, это недопустимо.
account_login: Я забыл пароль и не могу войти в аккаунт. | Код подтверждения не приходит, поэтому не могу войти. | Мой аккаунт заблокирован после слишком многих попыток входа.
""",
    "ja": """
order_tracking: 私の荷物は今どこにあるか教えてもらえますか？ | 注文{order}の配送状況が4日間更新されていません。紛失ですか？ | 昨日届く予定だった荷物がどこにあるのか分かりません。
shipping_time: 那覇までの配送は通常何日かかりますか？ | 今{product}を買ったら、いつ届きますか？ | シンガポールへの通常の配送日数はどのくらいですか？
customs_duties: 注文品が届いたときに輸入税を払う必要がありますか？ | 関税は価格に含まれていますか？ | 配達員に関税を請求されますか？
return_policy: 気に入らなかった商品は何日以内なら返品できますか？ | 気が変わったら{product}を返品できますか？ | 返品の送料はどちらが負担しますか？
refund_status: 先週返品を受け取ったそうですが、いつ返金されますか？ | 返品した分の返金がまだ口座に反映されていません。 | 注文{order}の返金が銀行に届くまでどのくらいかかりますか？
cancel_order: 1時間前に間違えて注文したので、止めてください。 | {product}の購入をすぐに取り消したいです。 | 注文{order}はもう不要なのでキャンセルできますか？
payment_failed: 支払いページで毎回エラーが表示されます。 | 残高は十分あるのに銀行に取引を拒否されました。 | PayPalで支払いが失敗したと表示されます。どうすればいいですか？
change_address: 番地を間違えて入力しました。配送先住所を直してもらえますか？ | 荷物を自宅ではなく会社に送ってください。 | 注文{order}の住所はまだ変更できますか？
product_info: この{product}は防水ですか？ | {product}の素材は何ですか？ | {product}にワンサイズ大きいものはありますか？
warranty_defect: {product}が3日で動かなくなりました。 | {product}の縫い目がほつれました。保証の対象ですか？ | 購入した機器の画面がちらつくので修理してほしいです。
complaint: 私の件の対応にはとてもがっかりしています。 | 配達員の態度が悪く、荷物を塀の向こうに投げ入れられました。 | 3回目の連絡なのに誰も返信してくれません。ありえません。
account_login: パスワードを忘れてアカウントに入れません。 | 認証コードが届かないのでサインインできません。 | ログインを何度も失敗してアカウントがロックされました。
""",
    "ko": """
order_tracking: 제 택배가 지금 어디쯤 있는지 알려주실 수 있나요? | 주문 {order} 배송 조회가 4일째 그대로예요. 분실된 건가요? | 어제 도착해야 할 택배가 어디 있는지 모르겠어요.
shipping_time: 제주까지 배송은 보통 며칠 걸리나요? | 지금 {product}을 사면 언제 받을 수 있나요? | 싱가포르까지 평소 배송 기간이 어떻게 되나요?
customs_duties: 주문한 물건이 도착할 때 수입 관세를 내야 하나요? | 관세가 가격에 이미 포함되어 있나요? | 배달할 때 기사님이 관세를 따로 받나요?
return_policy: 마음에 안 드는 상품은 며칠 안에 반품할 수 있나요? | 마음이 바뀌면 {product}을 반품할 수 있나요? | 반품 배송비는 누가 내나요?
refund_status: 지난주에 반품을 받으셨다는데 환불은 언제 되나요? | 반품한 것에 대한 환불이 아직 계좌에 안 들어왔어요. | 주문 {order} 환불이 은행에 들어오기까지 얼마나 걸리나요?
cancel_order: 한 시간 전에 실수로 주문했어요. 주문을 멈춰 주세요. | {product} 구매를 지금 바로 취소해야 해요. | 주문 {order}은 더 이상 필요 없는데 취소해 주실 수 있나요?
payment_failed: 결제 페이지에서 매번 오류가 나요. | 잔액이 충분한데 은행에서 거래를 거절했어요. | PayPal에서 결제가 실패했다고 나와요. 어떻게 해야 하나요?
change_address: 번지수를 잘못 입력했어요. 배송지 주소를 고쳐 주실 수 있나요? | 택배를 집 말고 회사로 보내 주세요. | 주문 {order}의 주소를 아직 바꿀 수 있나요?
product_info: 이 {product}은 방수되나요? | {product}은 어떤 소재로 만들어졌나요? | {product} 한 치수 큰 사이즈도 있나요?
warranty_defect: {product}이 사흘 만에 작동을 멈췄어요. | {product} 솔기가 터졌는데 보증 대상인가요? | 구매한 기기 화면이 깜빡거려서 수리를 받고 싶어요.
complaint: 제 문의를 처리한 방식에 정말 실망했어요. | 택배 기사님이 불친절했고 제 택배를 담장 너머로 던졌어요. | 벌써 세 번째 문의인데 아무도 답이 없어요. 말도 안 돼요.
account_login: 비밀번호를 잊어버려서 계정에 들어갈 수 없어요. | 인증 코드가 오지 않아서 로그인을 못 해요. | 로그인을 여러 번 실패해서 계정이 잠겼어요.
""",
    "it": """
order_tracking: Potete dirmi dove si trova il mio pacco in questo momento? | Il tracciamento dell'ordine {order} è fermo da quattro giorni, si è perso? | Il mio pacco doveva arrivare ieri e non so dove sia.
shipping_time: Quanti giorni ci vogliono di solito per una consegna a Palermo? | Se compro adesso la {product}, quando arriva? | Qual è il tempo di consegna abituale per Lugano?
customs_duties: Devo pagare tasse di importazione quando arriva l'ordine? | I dazi doganali sono già compresi nel prezzo? | Il corriere mi chiederà la dogana alla consegna?
return_policy: Quanti giorni ho per restituire qualcosa che non mi piace? | Posso rendere la {product} se cambio idea? | Chi paga la spedizione di un reso?
refund_status: Avete ricevuto il mio reso la settimana scorsa, quando mi rimborsate? | Non vedo ancora il rimborso del mio reso sul conto. | Quanto ci mette il rimborso dell'ordine {order} ad arrivare in banca?
cancel_order: Ho ordinato per sbaglio un'ora fa, per favore fermate l'ordine. | Devo annullare subito l'acquisto della {product}. | Potete annullare l'ordine {order}? Non mi serve più.
payment_failed: La pagina di pagamento dà errore ogni volta che provo a pagare. | La banca ha rifiutato l'operazione anche se ho fondi sufficienti. | PayPal dice che il pagamento non è andato a buon fine, cosa faccio?
change_address: Ho sbagliato il numero civico, potete correggere l'indirizzo di spedizione? | Mandate il pacco in ufficio invece che a casa, per favore. | Si può ancora cambiare l'indirizzo dell'ordine {order}?
product_info: La {product} è impermeabile? | Di che materiale è fatta la {product}? | La {product} c'è in una taglia più grande?
warranty_defect: La {product} ha smesso di funzionare dopo tre giorni. | Si è scucita la mia {product}, è coperta dalla garanzia? | Lo schermo del dispositivo che ho comprato sfarfalla, voglio la riparazione.
complaint: Sono molto deluso da come è stata gestita la mia pratica. | Il vostro corriere è stato scortese e ha lanciato il pacco oltre il cancello. | È la terza volta che scrivo e nessuno risponde, è inaccettabile.
account_login: Ho dimenticato la password e non riesco ad accedere all'account. | Il codice di verifica non arriva mai, quindi non riesco ad accedere. | Il mio account è bloccato dopo troppi tentativi di accesso.
""",
    "tr": """
order_tracking: Kargom şu anda nerede, söyleyebilir misiniz? | {order} numaralı siparişin takibi dört gündür değişmiyor, kayboldu mu? | Paketim dün gelmeliydi ve nerede olduğunu bilmiyorum.
shipping_time: İzmir'e teslimat genelde kaç gün sürüyor? | {product} ürününü şimdi alırsam ne zaman gelir? | Bakü'ye normal teslimat süresi ne kadar?
customs_duties: Siparişim geldiğinde ithalat vergisi ödemem gerekecek mi? | Gümrük ücretleri fiyata dahil mi? | Kurye teslimatta benden gümrük ücreti ister mi?
return_policy: Beğenmediğim bir ürünü kaç gün içinde iade edebilirim? | Fikrimi değiştirirsem {product} ürününü iade edebilir miyim? | İade kargo ücretini kim ödüyor?
refund_status: İademi geçen hafta teslim aldınız, paramı ne zaman alacağım? | İadem için geri ödeme hâlâ hesabıma geçmedi. | {order} siparişinin geri ödemesi bankaya ne kadar sürede yansır?
cancel_order: Bir saat önce yanlışlıkla sipariş verdim, lütfen siparişi durdurun. | {product} alışverişimi hemen iptal etmem gerekiyor. | {order} siparişini iptal edebilir misiniz? Artık ihtiyacım yok.
payment_failed: Ödeme sayfası her denememde hata veriyor. | Bakiyem yeterli olduğu hâlde bankam işlemi reddetti. | PayPal ödemenin başarısız olduğunu söylüyor, ne yapmalıyım?
change_address: Kapı numarasını yanlış yazdım, teslimat adresini düzeltebilir misiniz? | Lütfen paketi evime değil ofisime gönderin. | {order} siparişinin adresi hâlâ değiştirilebilir mi?
product_info: {product} su geçirmez mi? | {product} hangi malzemeden yapılmış? | {product} bir beden büyüğü var mı?
warranty_defect: {product} üç gün sonra çalışmayı bıraktı. | {product} dikişi söküldü, garanti kapsamında mı? | Aldığım cihazın ekranı titriyor, tamir istiyorum.
complaint: Talebimin ele alınış biçiminden çok hayal kırıklığına uğradım. | Kuryeniz kabaydı ve paketimi çitin üzerinden attı. | Üçüncü kez yazıyorum ve kimse cevap vermiyor, kabul edilemez.
account_login: Şifremi unuttum ve hesabıma giremiyorum. | Doğrulama kodu hiç gelmiyor, bu yüzden giriş yapamıyorum. | Çok fazla giriş denemesinden sonra hesabım kilitlendi.
""",
    "id": """
order_tracking: Bisa tolong kasih tahu paket saya sekarang ada di mana? | Pelacakan pesanan {order} tidak berubah selama empat hari, apakah hilang? | Paket saya seharusnya sampai kemarin dan saya tidak tahu di mana.
shipping_time: Berapa hari biasanya pengiriman ke Medan? | Kalau saya beli {product} sekarang, kapan sampainya? | Berapa lama waktu pengiriman biasa ke Kuala Lumpur?
customs_duties: Apakah saya harus bayar pajak impor saat pesanan tiba? | Apakah bea cukai sudah termasuk dalam harga? | Apakah kurir akan menagih bea masuk saat pengantaran?
return_policy: Berapa hari waktu saya untuk mengembalikan barang yang tidak saya suka? | Bisakah saya mengembalikan {product} kalau berubah pikiran? | Siapa yang membayar ongkos kirim retur?
refund_status: Retur saya sudah kalian terima minggu lalu, kapan uang saya kembali? | Pengembalian dana untuk retur saya belum masuk ke rekening. | Berapa lama pengembalian dana pesanan {order} masuk ke bank?
cancel_order: Saya salah pesan sejam yang lalu, tolong hentikan pesanannya. | Saya perlu membatalkan pembelian {product} sekarang juga. | Bisakah pesanan {order} dibatalkan? Saya tidak butuh lagi.
payment_failed: Halaman pembayaran selalu error setiap saya mencoba membayar. | Bank menolak transaksi padahal saldo saya cukup. | PayPal bilang pembayarannya gagal, saya harus bagaimana?
change_address: Saya salah menulis nomor rumah, bisa perbaiki alamat pengiriman? | Tolong kirim paket ke kantor saya, bukan ke rumah. | Apakah alamat pesanan {order} masih bisa diubah?
product_info: Apakah {product} ini tahan air? | {product} ini terbuat dari bahan apa? | Apakah {product} ada ukuran yang lebih besar?
warranty_defect: {product} berhenti berfungsi setelah tiga hari. | Jahitan {product} saya lepas, apakah ditanggung garansi? | Layar perangkat yang saya beli berkedip, saya mau perbaikan.
complaint: Saya sangat kecewa dengan cara kasus saya ditangani. | Kurir kalian kasar dan melempar paket saya lewat pagar. | Ini ketiga kalinya saya menulis dan tidak ada yang membalas, keterlaluan.
account_login: Saya lupa kata sandi dan tidak bisa masuk ke akun. | Kode verifikasi tidak pernah datang, jadi saya tidak bisa login. | Akun saya terkunci setelah terlalu banyak percobaan masuk.
""",
    "vi": """
order_tracking: Cho tôi hỏi bưu kiện của tôi hiện đang ở đâu? | Theo dõi đơn hàng {order} đã bốn ngày không cập nhật, có bị thất lạc không? | Gói hàng lẽ ra phải đến hôm qua mà tôi không biết nó ở đâu.
shipping_time: Giao hàng đến Đà Nẵng thường mất mấy ngày? | Nếu tôi mua {product} bây giờ thì khi nào nhận được? | Thời gian giao hàng thông thường đến Singapore là bao lâu?
customs_duties: Khi đơn hàng về tôi có phải đóng thuế nhập khẩu không? | Phí hải quan đã bao gồm trong giá chưa? | Người giao hàng có thu thuế hải quan khi giao không?
return_policy: Tôi có bao nhiêu ngày để trả lại món đồ không thích? | Nếu đổi ý tôi có thể trả lại {product} không? | Ai trả phí vận chuyển khi trả hàng?
refund_status: Các bạn đã nhận hàng trả của tôi tuần trước, khi nào tôi được hoàn tiền? | Tiền hoàn cho đơn trả hàng vẫn chưa về tài khoản của tôi. | Hoàn tiền cho đơn {order} bao lâu thì về ngân hàng?
cancel_order: Tôi đặt nhầm cách đây một tiếng, làm ơn dừng đơn hàng. | Tôi cần hủy ngay việc mua {product}. | Có thể hủy đơn {order} không? Tôi không cần nữa.
payment_failed: Trang thanh toán báo lỗi mỗi lần tôi thử trả tiền. | Ngân hàng từ chối giao dịch dù tài khoản đủ tiền. | PayPal báo thanh toán thất bại, tôi phải làm gì?
change_address: Tôi ghi sai số nhà, có thể sửa địa chỉ giao hàng không? | Làm ơn gửi gói hàng đến văn phòng thay vì nhà tôi. | Địa chỉ của đơn {order} còn đổi được không?
product_info: {product} này có chống nước không? | {product} làm bằng chất liệu gì? | {product} có cỡ lớn hơn không?
warranty_defect: {product} bị hỏng sau ba ngày sử dụng. | Đường may của {product} bị bung, có được bảo hành không? | Màn hình thiết bị tôi mua cứ nhấp nháy, tôi muốn sửa chữa.
complaint: Tôi rất thất vọng về cách xử lý vụ việc của tôi. | Nhân viên giao hàng thô lỗ và ném gói hàng qua hàng rào. | Đây là lần thứ ba tôi viết mà không ai trả lời, thật không thể chấp nhận.
account_login: Tôi quên mật khẩu và không vào được tài khoản. | Mã xác minh không bao giờ gửi đến nên tôi không đăng nhập được. | Tài khoản của tôi bị khóa sau quá nhiều lần đăng nhập.
""",
    "th": """
order_tracking: ช่วยบอกหน่อยได้ไหมว่าตอนนี้พัสดุของฉันอยู่ที่ไหน | สถานะคำสั่งซื้อ {order} ไม่ขยับมาสี่วันแล้ว หายหรือเปล่า | พัสดุควรถึงเมื่อวาน แต่ตอนนี้ไม่รู้ว่าอยู่ที่ไหน
shipping_time: ส่งไปภูเก็ตปกติใช้เวลากี่วัน | ถ้าซื้อ{product}ตอนนี้ จะได้รับเมื่อไร | ระยะเวลาจัดส่งปกติไปสิงคโปร์คือเท่าไร
customs_duties: ตอนของมาถึงต้องจ่ายภาษีนำเข้าไหม | ค่าธรรมเนียมศุลกากรรวมอยู่ในราคาแล้วหรือยัง | พนักงานส่งของจะเก็บค่าภาษีตอนส่งไหม
return_policy: ถ้าไม่ชอบสินค้า คืนได้ภายในกี่วัน | ถ้าเปลี่ยนใจ คืน{product}ได้ไหม | ค่าส่งคืนสินค้าใครเป็นคนจ่าย
refund_status: ร้านได้รับของที่ฉันส่งคืนเมื่อสัปดาห์ก่อนแล้ว จะได้เงินคืนเมื่อไร | เงินคืนจากการคืนสินค้ายังไม่เข้าบัญชีเลย | เงินคืนของคำสั่งซื้อ {order} ใช้เวลากี่วันกว่าจะเข้าธนาคาร
cancel_order: ฉันสั่งผิดเมื่อชั่วโมงที่แล้ว ช่วยหยุดคำสั่งซื้อด้วย | ต้องการยกเลิกการซื้อ{product}ทันที | ยกเลิกคำสั่งซื้อ {order} ได้ไหม ไม่ต้องการแล้ว
payment_failed: หน้าชำระเงินขึ้นข้อผิดพลาดทุกครั้งที่จ่าย | ธนาคารปฏิเสธรายการทั้งที่เงินในบัญชีพอ | PayPal แจ้งว่าชำระเงินไม่สำเร็จ ต้องทำอย่างไร
change_address: ฉันพิมพ์บ้านเลขที่ผิด ช่วยแก้ที่อยู่จัดส่งได้ไหม | ช่วยส่งพัสดุไปที่ออฟฟิศแทนบ้านได้ไหม | ที่อยู่ของคำสั่งซื้อ {order} ยังแก้ได้อยู่ไหม
product_info: {product}นี้กันน้ำไหม | {product}ทำจากวัสดุอะไร | {product}มีไซซ์ใหญ่กว่านี้ไหม
warranty_defect: {product}เสียหลังใช้ได้สามวัน | ตะเข็บของ{product}ขาด อยู่ในประกันไหม | หน้าจอเครื่องที่ซื้อมากะพริบตลอด อยากส่งซ่อม
complaint: ผิดหวังมากกับวิธีจัดการเรื่องของฉัน | พนักงานส่งของพูดจาไม่ดีและโยนพัสดุข้ามรั้ว | เขียนมาเป็นครั้งที่สามแล้วยังไม่มีใครตอบ รับไม่ได้จริงๆ
account_login: ลืมรหัสผ่านและเข้าบัญชีไม่ได้ | รหัสยืนยันไม่เคยส่งมา เลยล็อกอินไม่ได้ | บัญชีถูกล็อกเพราะพยายามเข้าสู่ระบบหลายครั้งเกินไป
""",
}

# Products that fit the {product} slot in each language (feminine-friendly where it matters).
PRODUCTS: dict[str, list[str]] = {
    "en": ["rain jacket", "backpack", "desk lamp", "wool coat", "phone case"],
    "zh": ["雨衣", "双肩包", "台灯", "羊毛大衣", "手机壳"],
    "es": ["chaqueta impermeable", "mochila", "lámpara de escritorio", "bufanda"],
    "ar": ["معطف المطر", "حقيبة الظهر", "مصباح المكتب", "المعطف الصوفي"],
    "fr": ["veste de pluie", "lampe de bureau", "écharpe en laine", "valise"],
    "de": ["Regenjacke", "Schreibtischlampe", "Wolljacke", "Reisetasche"],
    "pt": ["jaqueta impermeável", "mochila", "luminária de mesa", "mala de viagem"],
    "ru": ["куртка-дождевик", "настольная лампа", "сумка", "шерстяная шапка"],
    "ja": ["レインジャケット", "リュック", "デスクライト", "ウールコート"],
    "ko": ["우비", "가방", "스탠드", "코트"],
    "it": ["giacca antipioggia", "lampada da scrivania", "borsa da viaggio", "sciarpa"],
    "tr": ["yağmurluk", "sırt çantası", "masa lambası", "yün mont"],
    "id": ["jaket hujan", "tas ransel", "lampu meja", "mantel wol"],
    "vi": ["áo mưa", "ba lô", "đèn bàn", "áo khoác len"],
    "th": ["เสื้อกันฝน", "กระเป๋าเป้", "โคมไฟตั้งโต๊ะ", "เสื้อโค้ทขนสัตว์"],
}

GREETINGS: dict[str, list[str]] = {
    "en": ["", "Hello, ", "Hi there. "], "zh": ["", "你好，", "您好，"], "es": ["", "Hola, ", "Buenas. "],
    "ar": ["", "مرحبًا، ", "السلام عليكم، "], "fr": ["", "Bonjour, ", "Salut. "],
    "de": ["", "Hallo, ", "Guten Tag. "], "pt": ["", "Olá, ", "Oi. "], "ru": ["", "Здравствуйте, ", "Добрый день. "],
    "ja": ["", "こんにちは。", "すみません、"], "ko": ["", "안녕하세요. ", "저기요, "],
    "it": ["", "Salve, ", "Buongiorno. "], "tr": ["", "Merhaba, ", "İyi günler. "],
    "id": ["", "Halo, ", "Permisi, "], "vi": ["", "Xin chào, ", "Chào shop, "], "th": ["", "สวัสดีค่ะ ", "สวัสดีครับ "],
}


def intent_phrases() -> dict[str, dict[str, list[str]]]:
    """lang -> intent -> phrasings."""
    out: dict[str, dict[str, list[str]]] = {}
    for lang, block in _RAW.items():
        table: dict[str, list[str]] = {}
        for line in block.strip().splitlines():
            intent, _, phrases = line.partition(":")
            table[intent.strip()] = [p.strip() for p in phrases.split(" | ") if p.strip()]
        out[lang] = table
    return out
